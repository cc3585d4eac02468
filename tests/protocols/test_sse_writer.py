"""``sse.batch_writer``: the SSE batches go to the socket framed by the gateway instead of
through ``response.write``. What a client receives must be what ``response.write`` sends,
byte for byte (read here from a raw socket, chunk framing included), and the writer must
keep aiohttp's rules: HTTP/1.0 and compressed answers are left to aiohttp, a slow client
holds the stream back after 64 KiB, a closed connection raises ConnectionResetError."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from g4f_server.protocols import sse

BATCHES = [b'data: {"a":1}\n\n', b"data: " + "\u00e9".encode() * 300 + b"\n\n", b"", b"x"]
END = b"data: [DONE]\n\n"


def _app(use_batch_writer: bool, compress: bool = False) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if compress:
            response.enable_compression()
        await response.prepare(request)
        write = sse.batch_writer(request, response) if use_batch_writer else response.write
        for batch in BATCHES:
            if (pending := write(batch)) is not None:
                await pending
        await response.write_eof(END)
        return response

    app = web.Application()
    app.router.add_post("/", handler)
    return app


async def _raw(port: int, request: bytes) -> bytes:
    """The whole answer as bytes (the server closes after one request: Connection: close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = await reader.read()
    writer.close()
    return re.sub(rb"Date: [^\r]*\r\n", b"", data)


@contextlib.asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[int]:
    """``app`` served on a free loopback port (yielded), stopped on the way out."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def _answer(use_batch_writer: bool, request: bytes, **app: Any) -> bytes:
    async with _serving(_app(use_batch_writer, **app)) as port:
        return await _raw(port, request)


HTTP11 = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
HTTP10 = b"POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
GZIP = HTTP11.replace(b"\r\n\r\n", b"\r\nAccept-Encoding: gzip\r\n\r\n")


@pytest.mark.parametrize("request_bytes", [HTTP11, HTTP10, GZIP], ids=["1.1", "1.0", "gzip"])
async def test_the_bytes_are_response_writes(request_bytes: bytes) -> None:
    compress = request_bytes is GZIP
    ours = await _answer(True, request_bytes, compress=compress)
    aiohttps = await _answer(False, request_bytes, compress=compress)
    assert ours == aiohttps
    if request_bytes is HTTP11:  # framed as chunks, the empty batch skipped
        body = ours.partition(b"\r\n\r\n")[2]
        framed = b"".join(b"%x\r\n%b\r\n" % (len(b), b) for b in [*BATCHES, END] if b)
        assert body == framed + b"0\r\n\r\n"


async def test_a_slow_client_holds_the_stream_back() -> None:
    """Past 64 KiB unsent the writer waits for the socket, as response.write does: the
    handler stops writing while the client reads nothing, and goes on when it reads."""
    written = 0
    held = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal written
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        write = sse.batch_writer(request, response)
        chunk = b"data: " + b"y" * 65536 + b"\n\n"
        for _ in range(200):  # ~13 MB: far beyond what the socket buffers hold
            if (pending := write(chunk)) is not None:
                held.set()  # the writer asked to wait for the socket
                await pending
            written += 1
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/", handler)
    async with _serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**16)
        writer.write(HTTP11)
        await asyncio.wait_for(held.wait(), 5)
        await asyncio.sleep(0.2)
        stalled = written
        assert stalled < 200  # held back while nothing is read
        await asyncio.sleep(0.2)
        assert written == stalled
        total = 0
        while chunk := await reader.read(2**20):
            total += len(chunk)
        assert written == 200 and total > 200 * 65536
        writer.close()


async def test_a_closed_connection_raises_connection_reset() -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        write = sse.batch_writer(request, response)
        try:
            if (pending := write(b"data: 1\n\n")) is not None:
                await pending
            await closed.wait()
            await asyncio.sleep(0.05)
            write(b"data: 2\n\n")
        except BaseException as exc:
            outcome.set_result(exc)
            raise
        outcome.set_result(None)
        return response

    closed = asyncio.Event()
    app = web.Application()
    app.router.add_post("/", handler)
    async with _serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HTTP11)
        await reader.readuntil(b"data: 1\n\n")
        writer.close()
        await writer.wait_closed()
        closed.set()
        error = await asyncio.wait_for(outcome, 5)
        assert isinstance(error, ConnectionResetError)
