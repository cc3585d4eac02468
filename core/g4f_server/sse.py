"""Server-sent events as OpenAI clients expect them: ``data: <json>`` lines, then [DONE]."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from g4f_server.jsonio import dumps

DONE = b"data: [DONE]\n\n"


class CoalescingStreamResponse(web.StreamResponse):
    """A stream whose writes made within one event-loop turn leave in one socket write.

    An upstream read often yields several chunks at once; writing each separately costs a
    syscall (and a TCP segment) per chunk. Here a write only queues the bytes and, once
    per turn, a flush runs as soon as the handler waits for the upstream again, so no
    chunk is held back longer than that. A write error is raised on the next write.
    """

    _FLUSH_NOW = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[bytes] = []
        self._queued_size = 0
        self._flusher: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.queue(bytes(data)):
            await self.flush()

    def queue(self, data: bytes) -> bool:
        """``write`` without a coroutine per chunk: True when the caller must
        ``await flush()`` now (the queue is large), else it leaves on its own."""
        if self._error is not None:
            raise self._error
        self._queued.append(data)
        self._queued_size += len(data)
        if self._queued_size >= self._FLUSH_NOW:
            return True
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
        return False

    def _take(self) -> bytes:
        data = b"".join(self._queued)
        self._queued.clear()
        self._queued_size = 0
        return data

    async def flush(self) -> None:
        if self._queued:
            await super().write(self._take())

    async def _flush_soon(self) -> None:
        self._flusher = None
        try:
            await self.flush()
        except (ConnectionError, RuntimeError) as exc:
            self._error = ConnectionResetError(str(exc))

    async def write_eof(self, data: bytes = b"") -> None:
        if self._error is not None:
            raise self._error
        await super().write_eof(self._take() + data)


async def open_stream(request: web.Request, headers: dict[str, str]) -> CoalescingStreamResponse:
    """Start an SSE response. Status and headers are final once this returns."""
    response = CoalescingStreamResponse(
        status=200,
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            # Tell nginx and similar proxies not to buffer the stream.
            "X-Accel-Buffering": "no",
            **headers,
        },
    )
    await response.prepare(request)
    return response


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"
