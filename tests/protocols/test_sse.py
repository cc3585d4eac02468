"""The SSE response itself (protocols/sse.py): its headers, and that they travel with the
first write rather than in a TCP segment of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from g4f_server.protocols import sse

REQUEST = b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.fixture
async def events_server() -> AsyncIterator[tuple[TestServer, asyncio.Event]]:
    """A server whose one route opens a stream, then writes its first event only when
    the test sets the event it returns."""
    go = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        response = sse.event_stream(
            {"X-G4F-Provider": "P", "X-Accel-Buffering": "kept?", "x-upstream": "u"}
        )
        await response.prepare(request)
        await go.wait()
        await response.write(b"data: 1\n\n")
        await response.write_eof(sse.DONE)
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server, go
    finally:
        await server.close()


async def test_headers_go_out_with_the_first_write(
    events_server: tuple[TestServer, asyncio.Event],
) -> None:
    server, go = events_server
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(REQUEST)
        # The stream is open (status and headers final) but nothing was written: the
        # client has no byte yet, not even the status line.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.3)
        go.set()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    names = [line.split(": ", 1)[0] for line in lines[1:]]
    fields = dict(line.split(": ", 1) for line in lines[1:])
    # The stream's own headers first, then the caller's (a same-named one replaces ours in
    # place, as a dict merge did), then aiohttp's.
    assert names[:6] == [
        "Content-Type",
        "Cache-Control",
        "X-Accel-Buffering",
        "X-G4F-Provider",
        "x-upstream",
        "Transfer-Encoding",
    ]
    assert fields["Content-Type"] == "text/event-stream; charset=utf-8"
    assert fields["Cache-Control"] == "no-cache"
    assert fields["X-Accel-Buffering"] == "kept?"
    assert fields["Transfer-Encoding"] == "chunked"
    assert body == b"9\r\ndata: 1\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
