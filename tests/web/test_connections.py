"""Issue 28 items 2 and 17: idle connections cannot lock everyone out, and a refused
connection that the client resets first leaves no traceback. Through a real
``g4f-server api`` process; "other clients" are other loopback addresses (127.0.0.x)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import server_process

LIVE = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
MODELS = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G4F_")}
    return env | {"XDG_DATA_HOME": str(tmp), "G4F_LOAD_PLUGINS": "none"} | extra


async def _open(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _ask(port: int, source: str, request: bytes) -> int:
    """One request from ``source``: the answer's status (0: closed without one)."""
    reader, writer = await _open(port, source)
    try:
        writer.write(request)
        line = await asyncio.wait_for(reader.readline(), 5)
        return int(line.split()[1]) if line else 0
    finally:
        writer.close()


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection within ``within`` s (what it still had to
    say is read and dropped)."""
    try:
        await asyncio.wait_for(reader.read(), within)
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Any, int]]:
    env = _env(
        tmp_path,
        G4F_MAX_CONNECTIONS="12",
        G4F_MAX_CONNECTIONS_PER_ADDRESS="4",
        G4F_HEADER_TIMEOUT="1.5",
        G4F_KEEPALIVE_TIMEOUT="1.5",
    )
    with server_process(env=env) as (proc, base):
        yield proc, int(base.rsplit(":", 1)[1])


async def test_one_address_gets_its_share_and_others_still_get_in(guarded: Any) -> None:
    _, port = guarded
    idle = [await _open(port, "127.0.0.2") for _ in range(4)]
    await asyncio.sleep(0.2)
    assert await _ask(port, "127.0.0.2", MODELS) == 503  # over its share
    assert await _ask(port, "127.0.0.2", LIVE) == 200  # liveness answers through it
    assert await _ask(port, "127.0.0.3", MODELS) == 200  # another client is served
    for _, writer in idle:
        writer.close()


async def test_a_full_server_still_answers_liveness(guarded: Any) -> None:
    _, port = guarded
    idle = [await _open(port, f"127.0.0.{3 + i // 4}") for i in range(12)]  # 3 x 4
    await asyncio.sleep(0.2)
    assert await _ask(port, "127.0.0.9", MODELS) == 503
    assert await _ask(port, "127.0.0.9", LIVE) == 200
    # The idle ones sent nothing: reaped after header_timeout, and the server is open again.
    assert all([await _closed_by_server(reader, 4) for reader, _ in idle])
    assert await _ask(port, "127.0.0.9", MODELS) == 200


async def test_slow_headers_and_idle_keepalive_are_reaped(guarded: Any) -> None:
    _, port = guarded
    # One header line every 0.5 s: never a whole head, closed after header_timeout.
    reader, writer = await _open(port, "127.0.0.4")
    started = time.monotonic()
    writer.write(b"GET /v1/models HTTP/1.1\r\n")
    closed = False
    for i in range(12):
        await asyncio.sleep(0.5)
        if reader.at_eof() or await _closed_by_server(reader, 0.01):
            closed = True
            break
        try:
            writer.write(f"X-Slow-{i}: 1\r\n".encode())
            await writer.drain()
        except ConnectionError:
            closed = True
            break
    assert closed and time.monotonic() - started < 4
    writer.close()
    # A keep-alive connection is not closed while a request is handled, then is after
    # keepalive_timeout of idleness.
    reader, writer = await _open(port, "127.0.0.5")
    writer.write(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    assert await _closed_by_server(reader, 4)
    writer.close()


def test_a_refused_connection_reset_by_its_client_leaves_no_traceback(tmp_path: Path) -> None:
    # On asyncio's own loop (uvloop kept out by a stub that fails to import): there the
    # refusal's write_eof() raised when the client had gone first, and connection_lost
    # then failed on the timer that was never set (90 tracebacks for 30 connections).
    stub = tmp_path / "no_uvloop" / "uvloop"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("kept out: the asyncio loop")\n')
    env = _env(tmp_path, G4F_MAX_CONNECTIONS="2", PYTHONPATH=str(stub.parent))
    log = tmp_path / "server.log"
    with server_process(env=env, log=log) as (proc, base):
        port = int(base.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.3)
        # Frozen, the server accepts nothing: the kernel completes the handshakes, then
        # each client sends (part of) a request, or nothing, and hangs up (a close, or a
        # reset), all before the server sees the connection. On waking it refuses
        # connections that are already gone: its answer meets a reset.
        proc.send_signal(signal.SIGSTOP)
        try:
            for i in range(60):
                sock = socket.socket()
                sock.connect(("127.0.0.1", port))
                if i % 3:
                    sock.sendall(HEALTH if i % 3 == 1 else MODELS[:20])
                if i % 2:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        finally:
            proc.send_signal(signal.SIGCONT)
        time.sleep(2.5)
        for sock in idle:
            sock.close()
        time.sleep(0.3)
        status = asyncio.run(_ask(port, "127.0.0.1", HEALTH))
    assert status == 200
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in callback" not in text, text[-3000:]
