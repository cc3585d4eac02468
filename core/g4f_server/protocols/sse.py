"""Server-sent events as OpenAI clients expect them: ``data: <json>`` lines, then [DONE]."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from g4f_server.web.jsonio import dumps

DONE = b"data: [DONE]\n\n"

# Every stream's own headers, made once: a response copies them (a multidict's copy keeps
# the keys' folded forms) instead of building them from a dict per stream.
_HEADERS = CIMultiDictProxy(
    CIMultiDict(
        {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            # Tell nginx and similar proxies not to buffer the stream.
            "X-Accel-Buffering": "no",
        }
    )
)


class _EventStream(web.StreamResponse):
    """A stream whose status line and headers go out with its first ``write`` (as
    aiohttp's ``Response`` sends its body), not in a write of their own: one transport
    write, so one system call and one TCP segment, less per stream. Callers write the
    first batch as soon as the stream is open (``streaming.relay``), so nothing waits."""

    _send_headers_immediately = False


def event_stream(headers: dict[str, str]) -> web.StreamResponse:
    """An SSE response with ``headers`` after the stream's own (a provider's same-named
    header replaces ours), to ``prepare``: its status and headers are final then, and
    sent with the first ``write`` (or ``write_eof``), which the caller makes at once.

    Callers write each batch of events in one ``write`` and the end with ``write_eof``:
    the provider decides what a batch is (``events.ChatItem``), so nothing here buffers
    or delays a chunk.
    """
    response = _EventStream(headers=_HEADERS)
    response.headers.update(headers)
    return response


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"
