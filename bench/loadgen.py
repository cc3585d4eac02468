"""A small HTTP/1.1 keep-alive client over raw asyncio streams.

Two uses: timing single streamed requests (time to first byte and to first token, which
wrk cannot see), and a fallback load generator when wrk is not installed. It reads
``Content-Length`` and chunked bodies, nothing fancier; it only talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass, field

# The first delta that carries text: ``"content":"x`` (an empty role chunk does not count).
_CONTENT = b'"content":"'


@dataclass(slots=True)
class Timing:
    status: int
    first_byte: float  # seconds from sending the request to the first body byte
    first_token: float | None  # ... to the first non-empty "content" in the body
    total: float
    body: bytes


@dataclass(slots=True)
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        lat = sorted(self.latencies) or [0.0]
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rps": self.requests / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(lat, 50) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
        }


def percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(
    reader: asyncio.StreamReader, started: float
) -> tuple[int, float, float | None, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before the status line")
    status = int(status_line.split(b" ", 2)[1])
    length: int | None = None
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    first_byte = time.perf_counter() - started
    first_token: float | None = None
    body = bytearray()

    def seen(piece: bytes) -> None:
        nonlocal first_token
        body.extend(piece)
        if first_token is None:
            at = body.find(_CONTENT)
            while at >= 0:
                nxt = at + len(_CONTENT)
                if nxt < len(body) and body[nxt] != ord('"'):
                    first_token = time.perf_counter() - started
                    break
                at = body.find(_CONTENT, nxt)

    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()  # the empty trailer line
                break
            seen(await reader.readexactly(size))
            await reader.readexactly(2)
    elif length is not None:
        if length:
            seen(await reader.readexactly(length))
    else:
        seen(await reader.read())
    return status, first_byte, first_token, bytes(body)


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> Timing:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        started = time.perf_counter()
        self.writer.write(raw)
        status, first_byte, first_token, body = await _read_response(self.reader, started)
        return Timing(status, first_byte, first_token, time.perf_counter() - started, body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = self.reader = None


async def samples(host: str, port: int, raw: bytes, count: int) -> list[Timing]:
    """``count`` requests one after another on one keep-alive connection."""
    conn = Connection(host, port)
    try:
        return [await conn.request(raw) for _ in range(count)]
    finally:
        await conn.close()


async def load(host: str, port: int, raw: bytes, conns: int, duration: float) -> LoadResult:
    """Closed-loop load: ``conns`` connections, each sending its next request as soon as
    the previous answer is complete, for ``duration`` seconds."""
    result = LoadResult()
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while time.perf_counter() < deadline:
                try:
                    timing = await conn.request(raw)
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                    result.errors += 1
                    await conn.close()
                    continue
                result.requests += 1
                result.latencies.append(timing.total)
                if timing.status != 200:
                    result.errors += 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    result.seconds = time.perf_counter() - started
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
