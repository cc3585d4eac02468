"""Stored Responses objects are bounded in bytes, on SQLite and on a real redis-server:
one record (413 ``response_too_large`` naming ``response_max_bytes``) and all of them
(``response_store_max_bytes``, the least recently saved go first)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_providers import Scripted
from tests.redis_server import RedisServer

RESPONSES = "/v1/responses"


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {}
        return
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield {"state_url": server.url, "_server": server}
    finally:
        server.stop()


async def _client(make_client: Any, backend: dict[str, Any], **config: Any) -> Any:
    settings = {k: v for k, v in backend.items() if not k.startswith("_")}
    return await make_client(Scripted(), **settings, **config)


async def test_a_record_too_large_to_store_is_a_413(
    make_client: Any, backend: dict[str, Any]
) -> None:
    client = await _client(make_client, backend, response_max_bytes=4096)
    # The body alone is over the bound: refused before the provider is asked.
    resp = await client.post(RESPONSES, json={"model": "echo-1", "input": "x" * 5000})
    assert resp.status == 413, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "response_too_large" and "response_max_bytes" in error["message"]
    # A body under it whose record (input, echoed answer, history) is over it, streamed
    # or not: the answer ends with the error, never as completed and not stored.
    small = {"model": "echo-1", "input": "y" * 1500}
    resp = await client.post(RESPONSES, json=small)
    assert resp.status == 413 and "response_max_bytes" in await resp.text()
    resp = await client.post(RESPONSES, json={**small, "stream": True})
    text = await resp.text()
    assert "response_too_large" in text and "response.completed" not in text
    # Not stored: served as usual.
    resp = await client.post(RESPONSES, json={**small, "store": False})
    assert resp.status == 200


async def test_the_store_keeps_the_newest_within_its_bytes(
    make_client: Any, backend: dict[str, Any]
) -> None:
    # Each record is ~8.6 KB (a 1,500-character input appears in it five times, as
    # input, input item, answer and history): 20 KB holds the newest two.
    client = await _client(make_client, backend, response_store_max_bytes=20_000)
    ids = []
    for i in range(6):
        body = {"model": "echo-1", "input": f"{i}" * 1500}
        resp = await client.post(RESPONSES, json=body)
        assert resp.status == 200, await resp.text()
        ids.append((await resp.json())["id"])
    found = [(await client.get(f"{RESPONSES}/{rid}")).status for rid in ids]
    assert found == [404] * 4 + [200] * 2  # before: all six kept (a count cap only)
    assert (await client.delete(f"{RESPONSES}/{ids[-1]}")).status == 200
    server = backend.get("_server")
    if server is not None:  # the books match what is stored
        r = server.client()
        sizes = {k: int(v) for k, v in r.hgetall("g4f:resp:sizes").items()}
        assert len(sizes) == 1 and int(r.get("g4f:resp:total")) == sum(sizes.values())
        assert sum(sizes.values()) <= 20_000 and r.ttl("g4f:resp:total") > 0
