"""Server-sent events as OpenAI clients expect them: ``data: <json>`` lines, then [DONE]."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server.web.jsonio import dumps

DONE = b"data: [DONE]\n\n"


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


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"
