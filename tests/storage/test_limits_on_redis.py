"""Rate limits on a real redis-server (``--state-url``) when Redis misbehaves, and the
tokens-per-minute budget under concurrency.

A hung Redis (SIGSTOP: it accepts connections and never answers) is worse than a dead one:
without a bound of its own, each limiter call waits out the client's socket timeout.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.fake_providers import Scripted
from tests.redis_server import RedisServer

CHAT = "/v1/chat/completions"
LIMITED = {"per_client": {"rpm": 100, "tpm": 100_000, "concurrency": 5}}


def body(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "echo-1", "messages": [{"role": "user", "content": text}], **extra}


@contextmanager
def hung(server: RedisServer) -> Iterator[None]:
    """The test's own redis-server stopped (not killed) for the block, by its PID."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("fail_closed", [False, True])
async def test_a_hung_redis_costs_a_limited_request_the_bound_only(
    make_client: Any, redis_server: RedisServer, fail_closed: bool
) -> None:
    client = await make_client(
        Scripted(), state_url=redis_server.url, limits=LIMITED, limits_fail_closed=fail_closed
    )
    assert (await client.post(CHAT, json=body())).status == 200
    with hung(redis_server):
        for _ in range(3):
            started = time.monotonic()
            # Before the bound: 10-20 s each (socket timeout, retry, three checks).
            resp = await asyncio.wait_for(client.post(CHAT, json=body()), 5)
            # The first check waits the bound (250 ms), then the policy applies at once.
            assert time.monotonic() - started < 1.0
            if fail_closed:
                assert resp.status == 503
                assert (await resp.json())["error"]["code"] == "state_unavailable"
            else:
                assert resp.status == 200, await resp.text()
                assert "x-ratelimit-remaining-requests" not in resp.headers  # uncounted
    resp = await client.post(CHAT, json=body())  # Redis back: counted again
    assert resp.status == 200 and "x-ratelimit-remaining-requests" in resp.headers


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[dict[str, Any]]:
    """The config of either limiter: embedded, or on a real redis-server."""
    if request.param == "memory":
        yield {}
        return
    server = RedisServer(tmp_path / "redis").start()
    try:
        _clear_of_a_window_edge(server)
        yield {"state_url": server.url}
    finally:
        server.stop()


def _clear_of_a_window_edge(server: RedisServer) -> None:
    """Counts are per minute on Redis's clock: start a counting test well inside one."""
    seconds, _ = server.client().time()
    if seconds % 60 > 55:
        time.sleep(61 - seconds % 60)


async def _at_once(client: Any, n: int, **extra: Any) -> list[int]:
    posts = [client.post(CHAT, json=body(**extra)) for _ in range(n)]
    return [resp.status for resp in await asyncio.gather(*posts)]


async def test_tpm_holds_under_concurrency(make_client: Any, backend: dict[str, Any]) -> None:
    # Scripted(usage=True) reports 13 tokens per answer ("hi"): 60 is four and a bit.
    provider = Scripted(usage=True, delay=0.3)
    client = await make_client(provider, limits={"per_client": {"tpm": 60}}, **backend)
    # Without max_tokens each reserves the default (1024, at most the budget): one runs.
    statuses = await _at_once(client, 20)
    assert sorted(statuses) == [200] + [429] * 19  # before: twenty 200s (6x the budget)
    # Settled with its real 13 tokens: the rest of the minute is free again, and with a
    # max_tokens of 5 (an estimate of 8 + 5 = 13 each) four more fit before 60 is reached.
    statuses = await _at_once(client, 20, max_tokens=5)
    assert sorted(statuses) == [200] * 4 + [429] * 16
    resp = await client.post(CHAT, json=body(max_tokens=5))
    assert resp.status == 429 and resp.headers["x-ratelimit-remaining-tokens"] == "0"


async def test_a_failed_answer_gives_its_reservation_back(
    make_client: Any, backend: dict[str, Any]
) -> None:
    provider = Scripted(usage=True, fail=RuntimeError("upstream down"))
    client = await make_client(provider, limits={"per_client": {"tpm": 60}}, **backend)
    for _ in range(3):  # each reserved the whole budget, and gave it back
        assert (await client.post(CHAT, json=body())).status == 502
    provider.fail = None
    resp = await client.post(CHAT, json=body())
    assert resp.status == 200 and resp.headers["x-ratelimit-remaining-tokens"] == "60"
