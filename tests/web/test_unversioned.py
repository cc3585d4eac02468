"""A base URL without /v1 (http://localhost:1337 + /chat/completions), as LiteLLM accepts
and several clients send: the OpenAI SDK pointed at the bare server, through the real
server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from g4f_server.web.routes import ROUTES, UNVERSIONED, unversioned
from tests.fake_providers import Scripted

openai = pytest.importorskip("openai")


async def test_the_openai_sdk_works_without_v1(start_gateway: Any, tmp_path: Path) -> None:
    base = await start_gateway(plugins=[Scripted()], data_dir=str(tmp_path))
    async with openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0) as sdk:
        chat = await sdk.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "hello"}]
        )
        assert chat.choices[0].message.content
        stream = await sdk.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "hello"}], stream=True
        )
        assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        models = [m.id async for m in sdk.models.list()]
        assert "echo-1" in models
        assert (await sdk.models.retrieve("echo-1")).id == "echo-1"
        completion = await sdk.completions.create(model="echo-1", prompt="hello")
        assert completion.choices[0].text
        response = await sdk.responses.create(model="echo-1", input="hello")
        assert response.output_text
        assert (await sdk.responses.retrieve(response.id)).id == response.id
    async with aiohttp.ClientSession() as http:
        # Errors keep their shape; an unknown bare path is still a 404.
        async with http.post(base + "/chat/completions", json={"model": "x"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["message"]
        async with http.get(base + "/cookies") as resp:
            assert resp.status == 404  # only the client routes: demo mode names /v1/cookies
        async with http.get(base + "/openapi.json") as resp:
            paths = (await resp.json())["paths"]
    assert "/v1/chat/completions" in paths and "/chat/completions" not in paths


def test_each_alias_is_its_v1_route_and_embeddings_follows() -> None:
    by_path = {(m, p): t for m, p, t in ROUTES}
    for method, path, target in UNVERSIONED:
        assert by_path[(method, "/v1" + path)] == target
    # /v1/embeddings is being added elsewhere; its alias comes with it, same handler.
    target = "g4f_server.protocols.embeddings.routes:create_embeddings"
    derived = unversioned((*ROUTES, ("POST", "/v1/embeddings", target)))
    assert ("POST", "/embeddings", target) in derived
