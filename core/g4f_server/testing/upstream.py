"""The emulator toolkit: what an upstream emulator needs to speak a streaming wire format
and to fail on demand, in the ways the conformance suite checks.

An emulator subclasses ``Upstream``, adds its routes in ``routes(app)`` and says in
``env(url)`` which environment variables point its provider at it::

    class ParrotUpstream(Upstream):
        secrets = ("parrot-test-key",)         # must never appear in the gateway's logs

        def env(self, url):
            return {"PARROT_BASE_URL": url, "PARROT_API_KEY": "parrot-test-key"}

        def routes(self, app):
            app.router.add_post("/v1/chat", self.chat)

        async def chat(self, request):
            stream = await EventStream.open(request)        # SSE; ndjson=True for lines
            for word in ("Hello", " world"):
                await stream.send({"text": word})
            return await stream.end()

Faults are queued with ``fail(kind, ...)`` and taken by the next matching request
(``path`` is an fnmatch pattern of the request path):

- ``status``: answer ``status`` (401, 429 with ``Retry-After``, 500...) with an
  OpenAI-style error body, before the route runs;
- ``delay``: wait ``delay`` seconds, then answer normally;
- ``stall``: never answer; the request stays open until the client hangs up;
- ``drop``: close the connection without answering (an unreachable upstream mid-call);
- ``cut``: a stream that stops after ``after`` parts: the connection closes, no end
  marker (needs the route to write through ``EventStream``);
- ``empty``: a well-formed answer with no content: ``EventStream`` drops every part
  (a route answering one JSON object asks ``self.fault(request)``);
- ``hangup``: ``after`` parts, then nothing until the client hangs up, so a test can see
  how fast the client closes its request (``EventStream`` again).

``open_requests`` counts the requests being answered, and ``await closed(timeout)``
says how long it took them to end: the hang-up detector. Stdlib and aiohttp only.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FAULT_KINDS", "EventStream", "Fault", "Upstream", "error_response", "hold"]

FAULT_KINDS = frozenset({"status", "delay", "stall", "drop", "cut", "empty", "hangup"})
# The request key holding the fault a request took (RequestKey: aiohttp >= 3.14).
_FAULT: Any = (
    web.RequestKey("g4f_upstream_fault", object)
    if hasattr(web, "RequestKey")
    else "g4f_upstream_fault"
)
_ANSWER_FAULTS = frozenset({"cut", "empty", "hangup"})
_POLL = 0.01  # seconds between two looks at a held connection

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Fault:
    kind: str
    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    delay: float = 0.0
    after: int = 1  # parts written before a cut or a hang-up
    path: str = "*"
    times: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}: one of {sorted(FAULT_KINDS)}")


class Upstream:
    """The base of an emulator: routes of your own, faults and the hang-up detector."""

    secrets: tuple[str, ...] = ()  # values that must never reach a log
    # The fault kinds this emulator honours; the conformance suite skips the others.
    supports: frozenset[str] = FAULT_KINDS
    # Where a fault on the answer itself (cut, empty, hangup) goes when ``fail`` names no
    # path: the request carrying the answer, for an upstream that answers after set-up
    # calls (a session opened first, then a socket that streams the answer).
    answer_path: str = "*"

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.open_requests = 0
        self.paths: list[str] = []  # every request's path, in order
        self.url = ""  # set by whoever starts it (start() or your fixture)
        self._runner: web.AppRunner | None = None

    # --- what an emulator defines ----------------------------------------------------

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def env(self, url: str) -> dict[str, str]:
        """The environment variables that point the provider at ``url``."""
        return {}

    # --- running ---------------------------------------------------------------------

    def app(self) -> web.Application:
        """A new application serving the emulator (for aiohttp's ``aiohttp_server``)."""
        return self.make_app()

    def make_app(self) -> web.Application:
        """What ``app()`` and ``start()`` serve: the fault middleware, then ``routes``.
        Override this one (not ``app``) to add middlewares or settings of your own; an
        emulator whose ``app`` predates the kit (an attribute) still starts."""
        app = web.Application(middlewares=[self.middleware])
        self.routes(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host`` (a free port by default) and return the base URL."""
        self._runner = web.AppRunner(self.make_app(), handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.url = f"http://{host}:{sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- faults ----------------------------------------------------------------------

    def fail(self, kind: str = "status", **fields: Any) -> Fault:
        """Queue a fault for the next ``times`` requests whose path matches ``path``."""
        if kind in _ANSWER_FAULTS:
            fields.setdefault("path", self.answer_path)
        fault = Fault(kind, **fields)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def fault(self, request: web.Request) -> Fault | None:
        """The fault this request took (None: answer normally)."""
        return request.get(_FAULT)

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fnmatch.fnmatchcase(path, fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self._take_fault(request.path)
        request[_FAULT] = fault
        self.paths.append(request.path)
        self.open_requests += 1
        try:
            if fault is not None and fault.kind == "status":
                return error_response(fault.status, fault.message, fault.headers)
            if fault is not None and fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault is not None and fault.kind == "stall":
                await hold(request)
                return web.Response(status=504)  # nobody is left to read it
            elif fault is not None and fault.kind == "drop":
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=502)  # never sent: the connection is gone
            return await handler(request)
        finally:
            self.open_requests -= 1

    async def closed(self, timeout: float = 1.0) -> float | None:
        """Seconds until no request is open any more, or None if some still are after
        ``timeout`` (the client never closed its upstream request)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while self.open_requests:
            if loop.time() - started > timeout:
                return None
            await asyncio.sleep(_POLL)
        return loop.time() - started


async def hold(request: web.Request, limit: float = 120.0) -> None:
    """Wait until the client closes the connection (or ``limit`` seconds pass)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(_POLL)


def error_response(
    status: int, message: str = "", headers: Mapping[str, str] | None = None
) -> web.Response:
    """An OpenAI-style error answer; a 429 says when to come back."""
    extra = dict(headers or {})
    if status == 429:
        extra.setdefault("Retry-After", "1")
    kind = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
    body = {
        "error": {
            "message": message or f"emulated upstream error {status}",
            "type": kind.get(status, "server_error" if status >= 500 else "invalid_request"),
            "code": status,
        }
    }
    return web.json_response(body, status=status, headers=extra)


class EventStream:
    """A streamed answer: server-sent events (``data: {...}``) or NDJSON lines, written
    one ``send`` per socket write, and honouring the request's ``cut``, ``empty`` and
    ``hangup`` faults."""

    def __init__(
        self,
        request: web.Request,
        *,
        ndjson: bool = False,
        done: str | None = "[DONE]",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.request = request
        self.ndjson = ndjson
        self.done = None if ndjson else done
        content_type = "application/x-ndjson" if ndjson else "text/event-stream"
        self.response = web.StreamResponse(
            headers={"Content-Type": content_type, "Cache-Control": "no-cache", **(headers or {})}
        )
        self.fault: Fault | None = request.get(_FAULT)
        self.sent = 0
        self.gone = False  # cut, or the client hung up: nothing more is written

    @classmethod
    async def open(cls, request: web.Request, **options: Any) -> EventStream:
        stream = cls(request, **options)
        await stream.response.prepare(request)
        return stream

    def _frame(self, obj: Any, event: str | None) -> bytes:
        data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        if self.ndjson:
            return data.encode() + b"\n"
        head = f"event: {event}\n" if event else ""
        return f"{head}data: {data}\n\n".encode()

    async def send(self, *objs: Any, event: str | None = None) -> None:
        """Write ``objs`` (JSON values, or strings sent as they are) in one write."""
        kind = self.fault.kind if self.fault else None
        if self.gone or kind == "empty" or not objs:
            return
        if kind in ("cut", "hangup") and self.fault and self.sent >= self.fault.after:
            self.gone = True
            if kind == "cut":
                if self.request.transport is not None:
                    self.request.transport.close()
            else:
                await hold(self.request)
            return
        await self.response.write(b"".join(self._frame(o, event) for o in objs))
        self.sent += 1

    async def end(self) -> web.StreamResponse:
        """The end marker (``[DONE]`` for SSE by default), unless the stream was cut."""
        if not self.gone:
            if self.done is not None:
                await self.response.write(f"data: {self.done}\n\n".encode())
            await self.response.write_eof()
        return self.response
