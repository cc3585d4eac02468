"""Server-sent events as OpenAI clients expect them: ``data: <json>`` lines, then [DONE]."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from g4f_server.web.jsonio import dumps

DONE = b"data: [DONE]\n\n"

# Writes one batch; returns what to await (backpressure, the first write) or None.
Write = Callable[[bytes], Awaitable[object] | None]

# aiohttp's StreamWriter.write waits for the socket once this much was written since the
# last wait: the same threshold, so a slow client holds the stream back as it did.
_DRAIN_AFTER = 0x10000


async def open_stream(request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
    """Start an SSE response. Status and headers are final once this returns.

    Callers write each batch of events in one ``write`` and the end with ``write_eof``:
    the provider decides what a batch is (``events.ChatItem``), so nothing here buffers
    or delays a chunk.
    """
    response = web.StreamResponse(
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


def batch_writer(request: web.Request, response: web.StreamResponse) -> Write:
    """``response.write`` for a prepared chunked stream, without its two coroutines per
    call: each batch after the first goes to the socket framed as one HTTP chunk by one
    plain function (~10k instructions -> ~3k a batch), which returns something to await
    only when aiohttp would have waited (the same 64 KiB drain rule).

    The first batch goes through ``response.write``, which sends it with the buffered
    headers in one packet. Anything but plain chunked encoding (HTTP/1.0, compression)
    keeps ``response.write`` throughout. The writer's byte counts are kept as aiohttp
    keeps them (``output_size`` tells it whether an answer has started)."""
    writer = request.writer
    transport = writer.transport
    if not getattr(writer, "chunked", False) or response.compression or transport is None:
        return response.write
    first = True

    def write(data: bytes) -> Awaitable[object] | None:
        nonlocal first
        if first:
            first = False
            return response.write(data)
        if not data:  # an empty chunk would end the stream (aiohttp skips it too)
            return None
        if transport.is_closing():
            raise ClientConnectionResetError("Cannot write to closing transport")
        frame = b"%x\r\n%b\r\n" % (len(data), data)
        transport.write(frame)
        size = len(frame)
        writer.output_size += size
        writer.buffer_size = buffered = writer.buffer_size + size
        if buffered > _DRAIN_AFTER:
            writer.buffer_size = 0
            return writer.drain()
        return None

    return write


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"
