"""Upstream failures through the real gateway: a refused key, a 429 with its reset
headers and a cooldown that sends requests to another upstream serving the same model,
5xx, a stall, a cut stream, an error inside the stream, a client that hangs up, and an
upstream whose model list cannot be fetched."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

import g4f_server_openai_compat as plugin
from g4f_server.testing import wait_until

MODEL = "llama-3.3-70b-versatile"
HI = [{"role": "user", "content": "hi there"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def backup(make_emulator: Any) -> Any:
    return await make_emulator()


@pytest.fixture
async def two_upstreams(
    emulator: Any, backup: Any, start_gateway: Any, tmp_path: Path, emu_mod: Any
) -> str:
    """Groq (from GROQ_BASE_URL) first, then a config-file style upstream with the Groq
    preset serving the same model."""
    tables = {
        "groq": {},
        "backup": {
            "preset": "groq",
            "base_url": backup.base,
            "api_key": emu_mod.KEY,
            "priority": 60,
        },
    }
    return await start_gateway(plugins=[plugin], data_dir=str(tmp_path), upstreams=tables)


async def post(base: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/v1/chat/completions", json=body) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.text()


async def test_a_refused_key_is_reported_and_not_retried(gateway_url: str, emulator: Any) -> None:
    emulator.fail("chat", 401)
    status, _, text = await post(gateway_url, {"model": MODEL, "messages": HI})
    error = json.loads(text)["error"]
    assert status == 403 and error["code"] == "upstream_key_refused"
    assert "GROQ_API_KEY" in error["message"] and "Invalid API Key" in error["message"]
    calls = len(emulator.calls("chat"))
    status, _, text = await post(gateway_url, {"model": MODEL, "messages": HI})
    assert status == 403 and "GROQ_API_KEY" in text
    assert len(emulator.calls("chat")) == calls  # failed fast, upstream not asked again
    # Another key (the client's own) is judged on its own.
    emulator.key = "client-key"
    body = {"model": MODEL, "messages": HI, "api_key": "client-key"}
    status, _, text = await post(gateway_url, body)
    assert status == 200 and "Echo: hi there" in text


async def test_a_key_refused_at_start_up_marks_the_provider(
    emulator: Any, start_gateway: Any, tmp_path: Path
) -> None:
    emulator.key = "another-key"
    base = await start_gateway(plugins=[plugin], data_dir=str(tmp_path), upstreams=["groq"])
    async with aiohttp.ClientSession() as http, http.get(base + "/v1/providers/Groq") as resp:
        info = await resp.json()
    assert info["working"] is False and "GROQ_API_KEY" in info["error"]


async def test_429_cools_the_upstream_down_and_fails_over(
    two_upstreams: str, emulator: Any, backup: Any
) -> None:
    emulator.fail("chat", 429, **{"Retry-After": "30"})
    status, headers, text = await post(two_upstreams, {"model": MODEL, "messages": HI})
    assert status == 200 and "Echo: hi there" in text
    assert headers["X-G4F-Provider"] == "backup" and headers["X-G4F-Attempts"] == "2"
    # While it cools down, Groq is not asked at all: straight to the backup.
    status, headers, _ = await post(two_upstreams, {"model": MODEL, "messages": HI})
    assert status == 200 and headers["X-G4F-Provider"] == "backup"
    assert len(emulator.calls("chat")) == 1 and len(backup.calls("chat")) == 2


async def test_429_reset_headers_become_retry_after(gateway_url: str, emulator: Any) -> None:
    emulator.fail(
        "chat",
        429,
        **{
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "2m59.56s",
            "x-ratelimit-remaining-tokens": "5000",
            "x-ratelimit-reset-tokens": "7.66s",
        },
    )
    status, headers, text = await post(gateway_url, {"model": MODEL, "messages": HI})
    assert status == 429 and headers["Retry-After"] == "180"
    assert "Rate limit reached" in json.loads(text)["error"]["message"]
    status, headers, _ = await post(gateway_url, {"model": MODEL, "messages": HI})
    assert status == 429 and 170 <= int(headers["Retry-After"]) <= 180  # the cooldown
    assert len(emulator.calls("chat")) == 1


@pytest.mark.parametrize("fault", [500, 503, "error_first"])
async def test_server_errors_fail_over(
    two_upstreams: str, emulator: Any, backup: Any, fault: Any
) -> None:
    emulator.fail("chat", fault)
    status, headers, text = await post(
        two_upstreams, {"model": MODEL, "messages": HI, "stream": True}
    )
    assert status == 200 and headers["X-G4F-Provider"] == "backup"
    assert "Echo" in text and len(backup.calls("chat")) == 1


async def test_an_error_in_the_stream_after_text_ends_it_with_an_error(
    gateway_url: str, emulator: Any
) -> None:
    emulator.fail("chat", "error_later")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "a b c d"}], "stream": True}
    status, _, text = await post(gateway_url, body)
    assert status == 200  # the answer had started
    assert "Echo:" in text and "upstream model crashed" in text
    assert "[DONE]" not in text.split("upstream model crashed")[0]


async def test_a_cut_stream_is_an_error_not_an_answer(gateway_url: str, emulator: Any) -> None:
    emulator.fail("chat", "cut")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "a b c d"}], "stream": True}
    status, _, text = await post(gateway_url, body)
    assert status == 200 and "Echo:" in text and "cut" in text and '"error"' in text
    emulator.fail("chat", "cut")
    status, _, text = await post(gateway_url, {**body, "stream": False})
    assert status == 502 and "cut" in json.loads(text)["error"]["message"]


async def test_a_stalled_upstream_times_out(
    emulator: Any, start_gateway: Any, tmp_path: Path
) -> None:
    base = await start_gateway(
        plugins=[plugin], data_dir=str(tmp_path), upstreams=["groq"], timeout=1
    )
    emulator.fail("chat", "stall")
    status, _, text = await post(base, {"model": MODEL, "messages": HI})
    assert status == 504, text


async def test_a_client_hang_up_closes_the_upstream_request(
    gateway_url: str, emulator: Any
) -> None:
    emulator.chunk_delay = 0.2
    words = " ".join(f"w{i}" for i in range(50))
    body = {"model": MODEL, "messages": [{"role": "user", "content": words}], "stream": True}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(gateway_url + "/v1/chat/completions", json=body)
        await resp.content.readline()
        await wait_until(lambda: emulator.open_streams == 1, what="upstream stream open")
        resp.close()
    await wait_until(lambda: emulator.open_streams == 0, what="upstream stream closed")


async def test_an_unreachable_list_serves_the_presets_fallback(
    start_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("GROQ_API_KEY", "k")
    base = await start_gateway(plugins=[plugin], data_dir=str(tmp_path), upstreams=["groq"])
    async with aiohttp.ClientSession() as http, http.get(base + "/v1/providers/Groq") as resp:
        info = await resp.json()
    assert info["status"] == "degraded"
    assert "llama-3.1-8b-instant" in info["models"]
    status, _, text = await post(base, {"model": "llama-3.1-8b-instant", "messages": HI})
    assert status == 502 and "Cannot reach Groq" in text


async def test_the_sdk_sees_rate_limits(openai_client: openai.AsyncOpenAI, emulator: Any) -> None:
    emulator.fail("chat", 429, **{"Retry-After": "5"})
    with pytest.raises(openai.RateLimitError) as limited:
        await openai_client.chat.completions.create(model=MODEL, messages=HI)  # type: ignore[arg-type]
    assert limited.value.response.headers["retry-after"] == "5"
