"""Embeddings through the real gateway (/v1/embeddings) -> this plugin -> the emulated
upstream: floats and base64 (openai-python's default), what goes upstream for a preset
with quirks (Mistral's), dimensions, token ids (OpenAI's preset only), routing-table
names, and the upstream's failures mapped as chat's are."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

import g4f_server_openai_compat as plugin

TEXTS = ["the first text", "and a second one"]


@pytest.fixture
async def gateway(
    make_emulator: Any, start_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """``await gateway(preset, **emulator_fields)`` -> (openai client, emulator): the
    preset turned on by name, pointed at a fresh emulator by ``<PRESET>_BASE_URL``,
    which also lists the preset's default embedding model."""

    async def start(preset: str, **fields: Any) -> tuple[openai.AsyncOpenAI, Any]:
        emu = await make_emulator(**fields)
        default = plugin.PRESETS[preset].embedding_model
        if default:
            emu.models.append({"id": default, "object": "model"})
        monkeypatch.setenv(f"{preset.upper()}_BASE_URL", emu.base)
        for var in plugin.PRESETS[preset].key_env[:1]:
            monkeypatch.setenv(var, emu.key)
        base = await start_gateway(plugins=[plugin], data_dir=str(tmp_path), upstreams=[preset])
        emu.gateway = base
        clients.append(openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0))
        return clients[-1], emu

    clients: list[openai.AsyncOpenAI] = []
    yield start
    for client in clients:  # closed on the test's own loop
        await client.close()


async def test_base64_by_default_and_floats(gateway: Any, emu_mod: Any) -> None:
    client, emu = await gateway("mistral")
    # openai-python asks for base64 and decodes it: the numbers must survive the trip.
    reply = await client.embeddings.create(model="text-embed-small", input=TEXTS)
    sent = emu.last("embeddings").json
    assert sent["encoding_format"] == "float"  # always floats upstream
    assert [d.index for d in reply.data] == [0, 1]  # the emulator lists them reversed
    for item, text in zip(reply.data, TEXTS, strict=True):
        assert item.embedding == pytest.approx(emu_mod.vector_for(text), rel=1e-6)
    assert reply.model == "text-embed-small"
    assert reply.usage.prompt_tokens == 7 and reply.usage.total_tokens == 7  # its count
    floats = await client.embeddings.create(
        model="text-embed-small", input="one text", encoding_format="float"
    )
    assert floats.data[0].embedding == emu_mod.vector_for("one text")  # exact


async def test_what_goes_upstream(gateway: Any) -> None:
    client, emu = await gateway("mistral")
    await client.embeddings.create(
        model="text-embed-small",
        input=TEXTS,
        dimensions=5,
        user="ann",
        extra_body={"output_dtype": "float", "provider": "Mistral", "api_key": None},
    )
    sent = emu.last("embeddings")
    assert sent.json["model"] == "text-embed-small" and sent.json["input"] == TEXTS
    assert sent.json["dimensions"] == 5 and sent.json["output_dtype"] == "float"
    # Mistral's strict API refuses "user" (the preset drops it); gateway fields stay home.
    assert "user" not in sent.json and "provider" not in sent.json and "api_key" not in sent.json
    assert sent.headers["Authorization"] == "Bearer test-key"


async def test_dimensions(gateway: Any) -> None:
    client, _ = await gateway("mistral")
    reply = await client.embeddings.create(
        model="text-embed-small", input="x", dimensions=3, encoding_format="float"
    )
    assert len(reply.data[0].embedding) == 3
    # A big answer (~2 MB of JSON numbers) arrives in many network reads: all of it counts.
    texts = [f"text {i}" for i in range(64)]
    big = await client.embeddings.create(model="text-embed-small", input=texts, dimensions=3072)
    assert len(big.data) == 64 and {len(d.embedding) for d in big.data} == {3072}
    with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
        await client.embeddings.create(model="text-embed-fixed", input="x", dimensions=3)


async def test_openai_names_reach_the_presets_embedding_model(gateway: Any) -> None:
    client, emu = await gateway("mistral")
    for name in ("text-embedding-3-small", "text-embedding-ada-002"):
        reply = await client.embeddings.create(model=name, input="x")
        assert reply.model == "mistral-embed" and emu.last("embeddings").json["model"] == (
            "mistral-embed"
        )
    async with (
        aiohttp.ClientSession() as http,
        http.post(emu.gateway + "/v1/embeddings", json={"input": "no model named"}) as resp,
    ):
        assert resp.status == 200 and (await resp.json())["model"] == "mistral-embed"


async def test_token_ids_only_where_the_upstream_reads_openais(gateway: Any, emu_mod: Any) -> None:
    client, emu = await gateway("mistral", token_ids=True)
    with pytest.raises(openai.BadRequestError, match="token_input"):
        await client.embeddings.create(model="mistral-embed", input=[[1, 2, 3]])
    assert not emu.calls("embeddings")  # refused before any upstream call

    client, emu = await gateway("openai", token_ids=True)
    reply = await client.embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]], encoding_format="float"
    )
    assert emu.last("embeddings").json["input"] == [[1, 2, 3], [4, 5]]
    assert [d.embedding for d in reply.data] == [
        emu_mod.vector_for([1, 2, 3]),
        emu_mod.vector_for([4, 5]),
    ]
    assert reply.usage.prompt_tokens == 5


async def test_an_upstream_answering_base64_anyway(gateway: Any, emu_mod: Any) -> None:
    client, emu = await gateway("mistral")
    emu.fail("embeddings", "base64")
    reply = await client.embeddings.create(
        model="text-embed-small", input="x", encoding_format="float"
    )
    assert reply.data[0].embedding == pytest.approx(emu_mod.vector_for("x"), rel=1e-6)


async def test_upstream_errors(gateway: Any) -> None:
    client, emu = await gateway("mistral")
    emu.fail("embeddings", 500)
    with pytest.raises(openai.InternalServerError) as failed:
        await client.embeddings.create(model="text-embed-small", input="x")
    assert failed.value.status_code == 502 and "Internal server error" in str(failed.value)
    emu.fail("embeddings", "short")
    with pytest.raises(openai.InternalServerError, match="1 embeddings for 2 inputs"):
        await client.embeddings.create(model="text-embed-small", input=["a", "b"])
    emu.fail("embeddings", "nodata")
    with pytest.raises(openai.InternalServerError, match="embedding backend is warming up"):
        await client.embeddings.create(model="text-embed-small", input="x")
    with pytest.raises(openai.BadRequestError, match="empty"):  # our own check, no call
        await client.embeddings.create(model="text-embed-small", input=["a", ""])
    emu.fail("embeddings", 401)
    with pytest.raises(openai.PermissionDeniedError, match="MISTRAL_API_KEY"):
        await client.embeddings.create(model="text-embed-small", input="x")
    calls = len(emu.calls("embeddings"))
    with pytest.raises(openai.PermissionDeniedError):  # remembered: no second call
        await client.embeddings.create(model="text-embed-small", input="x")
    assert len(emu.calls("embeddings")) == calls


async def test_429_cools_down_and_fails_over(
    make_emulator: Any, start_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await make_emulator(), await make_emulator()
    monkeypatch.setenv("MISTRAL_BASE_URL", first.base)
    monkeypatch.setenv("MISTRAL_API_KEY", first.key)
    tables = {
        "mistral": {},
        "backup": {
            "preset": "mistral",
            "base_url": second.base,
            "api_key": second.key,
            "priority": 60,
        },
    }
    base = await start_gateway(plugins=[plugin], data_dir=str(tmp_path), upstreams=tables)
    first.fail("embeddings", 429, **{"Retry-After": "30"})
    body = {"model": "text-embed-small", "input": "x"}
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(base + "/v1/embeddings", json=body) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["X-G4F-Provider"] == "backup"
    assert len(first.calls("embeddings")) == 1  # cooling down: not asked the second time
    assert len(second.calls("embeddings")) == 2


async def test_presets_without_embeddings(gateway_url: str, emulator: Any) -> None:
    """Groq has no /embeddings: no provider embeds, and its embedding-looking model is
    offered for nothing (neither chat nor embeddings)."""
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway_url + "/v1/embeddings", json={"input": "x"}) as resp:
            error = (await resp.json())["error"]
            assert resp.status == 404 and error["code"] == "no_embeddings_provider"
        url = gateway_url + "/api/Groq/embeddings"
        async with http.post(url, json={"input": "x"}) as resp:
            assert resp.status == 400 and "does not support embeddings" in await resp.text()
    assert not emulator.calls("embeddings")


async def test_embedding_models_embed_and_never_chat(gateway: Any) -> None:
    client, _ = await gateway("mistral")
    with pytest.raises(openai.BadRequestError, match="does not support chat"):
        await client.chat.completions.create(
            model="text-embed-small", messages=[{"role": "user", "content": "hi"}]
        )
    model = await client.models.retrieve("text-embed-small")
    assert "embeddings" in json.loads(model.model_dump_json())["capabilities"]
