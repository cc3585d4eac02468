"""The response cache through the real server: miss then hit, streamed and not, bypass
rules, scope per key, errors never stored, the byte bound."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from g4f_server import errors
from g4f_server.storage.memory import MemoryCache
from tests.fake_providers import Scripted

CHAT = "/v1/chat/completions"


def body(text: str = "hello cached world", **extra: Any) -> dict[str, Any]:
    return {
        "model": "echo-1",
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
        **extra,
    }


def streamed_text(raw: str) -> tuple[str, int]:
    parts = []
    chunks = 0
    for line in raw.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            for choice in chunk["choices"]:
                if content := choice["delta"].get("content"):
                    parts.append(content)
                    chunks += 1
    return "".join(parts), chunks


async def test_miss_then_hit_not_streamed(make_client: Any) -> None:
    provider = Scripted(usage=True)
    client = await make_client(provider, cache_ttl=60)
    first = await client.post(CHAT, json=body())
    assert first.status == 200 and first.headers["X-G4F-Cache"] == "miss"
    second = await client.post(CHAT, json=body())
    assert second.status == 200 and second.headers["X-G4F-Cache"] == "hit"
    assert len(provider.seen) == 1  # the provider answered once
    a, b = await first.json(), await second.json()
    assert a["choices"][0]["message"] == b["choices"][0]["message"]
    assert b["usage"]["prompt_tokens"] == 11
    assert second.headers["X-G4F-Provider"] == "Echo"


async def test_a_hit_streams_as_chunks(make_client: Any) -> None:
    provider = Scripted()
    client = await make_client(provider, cache_ttl=60)
    long = " ".join(f"word{i}" for i in range(40))
    miss = await client.post(CHAT, json=body(long, stream=True))
    assert miss.headers["X-G4F-Cache"] == "miss"
    text, _ = streamed_text(await miss.text())
    hit = await client.post(CHAT, json=body(long, stream=True))
    assert hit.headers["X-G4F-Cache"] == "hit"
    raw = await hit.text()
    replayed, chunks = streamed_text(raw)
    assert replayed == text and chunks > 1 and raw.rstrip().endswith("data: [DONE]")
    # The streamed and the plain form share the entry: the answer is the same.
    plain = await client.post(CHAT, json=body(long))
    assert plain.headers["X-G4F-Cache"] == "hit"
    assert (await plain.json())["choices"][0]["message"]["content"] == text
    assert len(provider.seen) == 1


@pytest.mark.parametrize(
    ("change", "headers"),
    [
        ({"cache": False}, {}),
        ({}, {"Cache-Control": "no-cache"}),
        ({"temperature": 0.7}, {}),
        ({"conversation_id": "c1"}, {}),
    ],
)
async def test_bypass(make_client: Any, change: dict[str, Any], headers: dict[str, str]) -> None:
    provider = Scripted()
    client = await make_client(provider, cache_ttl=60)
    for _ in range(2):
        resp = await client.post(CHAT, json={**body(), **change}, headers=headers)
        assert resp.status == 200 and resp.headers["X-G4F-Cache"] == "bypass"
    assert len(provider.seen) == 2


async def test_seed_or_asking_makes_it_cacheable(make_client: Any) -> None:
    provider = Scripted()
    client = await make_client(provider, cache_ttl=60)
    seeded = {**body(), "temperature": 1, "seed": 7}
    asked = {**body(), "temperature": 1, "cache": True}
    for payload in (seeded, asked):
        assert (await client.post(CHAT, json=payload)).headers["X-G4F-Cache"] == "miss"
        assert (await client.post(CHAT, json=payload)).headers["X-G4F-Cache"] == "hit"


async def test_scoped_per_key(make_client: Any) -> None:
    keys = {n: {"sha256": hashlib.sha256(n.encode()).hexdigest()} for n in ("ann", "bob")}
    client = await make_client(Scripted(), cache_ttl=60, keys=keys)
    ann, bob = {"Authorization": "Bearer ann"}, {"Authorization": "Bearer bob"}
    assert (await client.post(CHAT, json=body(), headers=ann)).headers["X-G4F-Cache"] == "miss"
    assert (await client.post(CHAT, json=body(), headers=bob)).headers["X-G4F-Cache"] == "miss"
    assert (await client.post(CHAT, json=body(), headers=ann)).headers["X-G4F-Cache"] == "hit"


async def test_errors_are_never_stored(make_client: Any) -> None:
    provider = Scripted(fail=errors.ProviderError("down"))
    client = await make_client(provider, cache_ttl=60)
    assert (await client.post(CHAT, json=body())).status == 502
    provider.fail = None
    resp = await client.post(CHAT, json=body())
    assert resp.status == 200 and resp.headers["X-G4F-Cache"] == "miss"
    # Broken mid-stream: not stored either.
    provider.fail_after = 1
    resp = await client.post(CHAT, json=body("another question", stream=True))
    await resp.read()
    provider.fail_after = None
    resp = await client.post(CHAT, json=body("another question"))
    assert resp.headers["X-G4F-Cache"] == "miss"


async def test_off_by_default(make_client: Any) -> None:
    client = await make_client(Scripted())
    assert "X-G4F-Cache" not in (await client.post(CHAT, json=body())).headers


async def test_memory_cache_is_an_lru_bounded_in_bytes() -> None:
    now = [0.0]
    cache = MemoryCache(max_bytes=100, clock=lambda: now[0])
    await cache.put("a", b"x" * 40, 10)
    await cache.put("b", b"y" * 40, 10)
    assert await cache.get("a") == b"x" * 40  # a is now the most recent
    await cache.put("c", b"z" * 40, 10)  # over 100 bytes: b (least recent) goes
    assert await cache.get("b") is None and await cache.get("a") is not None
    assert cache.used <= 100
    await cache.put("huge", b"h" * 200, 10)  # larger than the whole cache: not kept
    assert await cache.get("huge") is None
    now[0] = 11.0
    assert await cache.get("a") is None  # expired
