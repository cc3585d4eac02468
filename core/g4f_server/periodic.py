"""Background jobs that repeat for as long as the app runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def every(seconds: float, job: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Run ``job`` every ``seconds`` in the background while the ``async with`` block runs;
    leaving the block cancels it (the job itself must not raise)."""

    async def repeat() -> None:
        while True:
            await asyncio.sleep(seconds)
            await job()

    async with in_background(repeat()):
        yield


@contextlib.asynccontextmanager
async def in_background(job: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``job`` as a task while the ``async with`` block runs; leaving the block
    cancels it and waits until it has stopped."""
    task = asyncio.create_task(job)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
