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
