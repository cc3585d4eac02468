"""Open connections: the cap, each address's share of it, and the timeouts that reap the idle.

Issue 28: 1,000 connections that sent nothing (or one header line every 10 s) filled
``max_connections`` and every client, ``/health`` included, got 503 for as long as they
stayed (aiohttp's own keep-alive timer never closes a connection that has not finished a
request). So, per process:

- ``header_timeout``: a new connection must have sent a whole request head within it;
- ``keepalive_timeout``: a connection idle after an answer is closed after it (a
  connection is never closed while a request is being handled or an answer is still
  being written; bodies have ``body_timeout``);
- ``max_connections_per_address``: one client address (an IPv6 /64, where one machine
  has millions) holds at most this share of the cap; trusted proxies are exempt, as many
  clients share their address;
- a connection refused over the cap or the share gets its 503 once its request line is
  in, except ``GET /health/live``, which is answered 200 there: the process is up, and a
  liveness probe that failed while the server is full would get it restarted.

The timeouts are checked once a second (``sweep``), so each may run a second over.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.config import AppConfig
from g4f_server.pipeline.scope import parse_trusted

RETRY_AFTER = 1  # seconds: caps are hit in bursts, a second later there is room again
SWEEP_EVERY = 1.0  # seconds between two checks of the timeouts
REFUSAL_WAIT = 1.0  # seconds a refused connection gets to send its request line
HEAD_PEEK = 2048  # bytes of a refused connection read to find its request line


def _response(status: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _overloaded(setting: str) -> bytes:
    body = (
        b'{"error":{"message":"Too many open connections (' + setting.encode() + b"); "
        b'retry shortly","type":"server_error","code":"server_overloaded","param":null}}'
    )
    # The retry hints every protocol's 503 carries (errors.retry_hints): Retry-After and
    # x-should-retry: true.
    hints = {"Retry-After": str(RETRY_AFTER)}
    hints.update(errors.retry_hints(503, hints))
    return _response(
        "503 Service Unavailable", body, "".join(f"{k}: {v}\r\n" for k, v in hints.items())
    )


OVER_CAP = _overloaded("max_connections")
OVER_SHARE = _overloaded("max_connections_per_address")
LIVE_BODY = b'{"status":"ok"}'
_LIVE = _response("200 OK", LIVE_BODY)
_LIVE_HEAD = _LIVE[: -len(LIVE_BODY)]


def _live_answer(line: bytes) -> bytes | None:
    """The answer to ``GET|HEAD /health/live`` (any query), else None."""
    method, _, rest = line.partition(b" ")
    target = rest.partition(b" ")[0].partition(b"?")[0]
    if target != b"/health/live" or method not in (b"GET", b"HEAD"):
        return None
    return _LIVE if method == b"GET" else _LIVE_HEAD


class Refusal(asyncio.Protocol):
    """A connection over the cap or its address's share: answered once its request line
    is in (or after ``REFUSAL_WAIT``), then closed when the client is done or a second
    later. (Closing with its request unread would reset the connection, and the client
    might never see the answer.) A client that resets first only ends it: its
    ``write_eof`` may raise, and that is no error of ours (issue 28 item 17)."""

    def __init__(self, refusal: bytes) -> None:
        self.refusal = refusal
        self.transport: Any = None  # uvloop's transports are not asyncio's class
        self.timer: asyncio.TimerHandle | None = None
        self.head = b""
        self.answered = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(REFUSAL_WAIT, self._time_up)

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return  # the rest of the request is not read: it is refused
        self.head += data[:HEAD_PEEK]
        line, found, _ = self.head.partition(b"\r\n")
        if found or len(self.head) >= HEAD_PEEK:
            self._answer(_live_answer(line) or self.refusal)

    def eof_received(self) -> bool:
        self.transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _time_up(self) -> None:
        if self.answered:
            self.transport.close()
        else:
            self._answer(self.refusal)

    def _answer(self, response: bytes) -> None:
        self.answered = True
        if self.timer is not None:
            self.timer.cancel()
        try:
            self.transport.write(response)
            if self.transport.can_write_eof():
                self.transport.write_eof()
        except (OSError, RuntimeError):  # the client is gone (reset): nothing to answer
            self.transport.abort()
            return
        self.timer = asyncio.get_running_loop().call_later(REFUSAL_WAIT, self._time_up)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the cap, the share and the timers."""

    __slots__ = ("address", "busy", "deadline", "inner", "open", "owner", "transport")

    def __init__(self, inner: Any, owner: Connections) -> None:
        self.inner, self.owner = inner, owner
        self.transport: Any = None
        self.address = ""
        self.busy = 0  # requests being handled (aiohttp handles one at a time)
        self.deadline = 0.0
        self.open = False

    def connection_made(self, transport: Any) -> None:
        owner = self.owner
        peer = transport.get_extra_info("peername")
        self.address = owner.address_of(peer[0] if peer else "")
        refusal = owner.refusal_for(self.address)
        if refusal is not None:
            owner.refused.note(limit=owner.limit, share=owner.share, reason=refusal)
            protocol = Refusal(OVER_CAP if refusal == "max_connections" else OVER_SHARE)
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            return
        self.transport, self.open = transport, True
        self.deadline = owner.loop_time() + owner.header_timeout
        owner.add(self)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open:
            self.open = False
            self.owner.remove(self)
            self.inner.connection_lost(exc)


class Connections:
    """Every open connection of this process, by aiohttp's protocol object."""

    def __init__(self, config: AppConfig, refused: Any) -> None:
        self.limit = config.max_connections
        self.share = config.max_connections_per_address or max(1, config.max_connections // 4)
        self.header_timeout = config.header_timeout
        self.keepalive_timeout = config.keepalive_timeout
        self.trusted = parse_trusted(config.trusted_proxies)
        self.refused = refused  # a throttled log line (admission._Throttled)
        self.by_inner: dict[Any, _Guarded] = {}
        self.per_address: Counter[str] = Counter()
        self.loop_time = asyncio.get_running_loop().time

    def wrap(self, inner: Any) -> asyncio.Protocol:
        return _Guarded(inner, self)

    def address_of(self, host: str) -> str:
        """Whose share a connection counts against: its address, an IPv6 one by /64;
        "" (no share) for a trusted proxy or a socket without an address."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return ""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.trusted):
            return ""
        if isinstance(ip, ipaddress.IPv6Address):
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def refusal_for(self, address: str) -> str | None:
        if len(self.by_inner) >= self.limit:
            return "max_connections"
        if address and self.per_address[address] >= self.share:
            return "max_connections_per_address"
        return None

    def add(self, conn: _Guarded) -> None:
        self.by_inner[conn.inner] = conn
        if conn.address:
            self.per_address[conn.address] += 1

    def remove(self, conn: _Guarded) -> None:
        self.by_inner.pop(conn.inner, None)
        if conn.address:
            self.per_address[conn.address] -= 1
            if self.per_address[conn.address] <= 0:
                del self.per_address[conn.address]

    def started(self, protocol: Any) -> _Guarded | None:
        """A request of this connection is being handled: no timeout applies."""
        conn = self.by_inner.get(protocol)
        if conn is not None:
            conn.busy += 1
        return conn

    def finished(self, conn: _Guarded) -> None:
        """Its answer is out (or being written): the keep-alive timer starts."""
        conn.busy -= 1
        if not conn.busy:
            conn.deadline = self.loop_time() + self.keepalive_timeout

    def sweep(self) -> int:
        """Close the connections past their deadline; how many."""
        now = self.loop_time()
        late = [
            c
            for c in self.by_inner.values()
            if not c.busy and now >= c.deadline and not c.transport.get_write_buffer_size()
        ]
        for conn in late:
            conn.transport.close()  # aiohttp sees connection_lost, as for a hang-up
        return len(late)


CONNECTIONS: web.AppKey[Connections] = web.AppKey("connections", Connections)
