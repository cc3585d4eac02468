"""Waiting and reading helpers for tests, without pytest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable

from g4f_server.events import ChatEvent, ChatItem


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition"
) -> None:
    """Return as soon as ``condition()`` is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s")
        await asyncio.sleep(0.01)


async def chat_events(items: AsyncIterable[ChatItem]) -> AsyncIterator[ChatEvent]:
    """The events a ``chat`` hook yields, one by one: its lists flattened, in order."""
    async for item in items:
        if isinstance(item, list):
            for event in item:
                yield event
        else:
            yield item
