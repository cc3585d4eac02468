"""Caps on how much the server takes on at once, and quiet logs when clients misbehave.

- ``max_connections``, its per-address share and the header and keep-alive timeouts
  (``connections.py``): a connection over the cap is answered 503 with ``Retry-After``
  and closed, so idle or slow clients cannot exhaust the file descriptors (issue 17:
  20,000 half-sent requests did, and new clients timed out), nor hold the cap (issue 28);
- ``max_in_flight`` and ``in_flight_body_budget``: a request over either cap is answered
  503 with ``Retry-After`` before its body is read, which bounds the memory that bodies
  being handled can take (a JSON body costs a few times its size once parsed);
- accept() failures and malformed HTTP are logged as one line at most every 10 seconds
  with a count, never one traceback per bad request (172,000 tracebacks in 45 s before).

``serve`` runs the app as ``web.run_app`` would, with the connection cap in its runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.config import AppConfig
from g4f_server.logs import get_logger
from g4f_server.periodic import every
from g4f_server.web.connections import (
    CONNECTIONS,
    RETRY_AFTER,
    SWEEP_EVERY,
    Connections,
)

log = get_logger("g4f_server.admission")
# Liveness and readiness must answer even when the server is full.
_EXEMPT = frozenset({"/health", "/health/live", "/health/ready"})


# --- requests in flight ------------------------------------------------------------------


class InFlight:
    """The requests being handled and the body bytes they announced, held under both caps
    (the edge middleware admits and releases). A body's cost is its Content-Length, or
    ``max_body_size`` when it is chunked (its size is unknown)."""

    __slots__ = ("body_bytes", "budget", "max_body_size", "max_requests", "requests")

    def __init__(self, config: AppConfig) -> None:
        self.max_requests, self.budget = config.max_in_flight, config.in_flight_body_budget
        self.max_body_size = config.max_body_size
        self.requests = self.body_bytes = 0

    def admit(self, request: web.Request) -> int | None:
        """The cost to ``release`` once the request is answered; None for a health check
        (never counted); 503 over either cap."""
        if request.path in _EXEMPT:
            return None
        cost = request.content_length
        if cost is None:
            cost = self.max_body_size if request.body_exists else 0
        # Alone, any body the size limit allows is admitted: the budget never starves one.
        if self.requests >= self.max_requests or (
            self.body_bytes and self.body_bytes + cost > self.budget
        ):
            raise errors.OverloadedError(
                "The server is handling as many requests as it takes "
                "(max_in_flight / in_flight_body_budget); retry shortly",
                retry_after=RETRY_AFTER,
            )
        self.requests += 1
        self.body_bytes += cost
        return cost

    def release(self, cost: int | None) -> None:
        if cost is not None:
            self.requests -= 1
            self.body_bytes -= cost


# --- connections (the guard itself: connections.py) -------------------------------------


class _GuardedServer:
    """aiohttp's ``web.Server`` (the protocol factory), each connection behind the guard."""

    def __init__(self, server: web.Server, connections: Connections) -> None:
        self._server = server
        self._connections = connections

    def __call__(self) -> asyncio.Protocol:
        return self._connections.wrap(self._server())

    def __getattr__(self, name: str) -> Any:  # shutdown, pre_shutdown, connections...
        return getattr(self._server, name)


class _GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, connections: Connections, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._connections = connections

    async def _make_server(self) -> Any:
        return _GuardedServer(await super()._make_server(), self._connections)


def serve(
    app: web.Application,
    config: AppConfig,
    *,
    reuse_port: bool = False,
    loop: asyncio.AbstractEventLoop | None = None,
    on_listening: Callable[[web.AppRunner], None] | None = None,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, as ``web.run_app`` does, with the caps;
    ``on_listening`` is called once the socket is bound (the start-up line)."""
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_loop_exception)
    quiet_malformed_http()
    main = loop.create_task(_serve(app, config, reuse_port, on_listening))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main)
        rest = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in rest:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


async def _serve(
    app: web.Application,
    config: AppConfig,
    reuse_port: bool,
    on_listening: Callable[[web.AppRunner], None] | None,
) -> None:
    connections = Connections(config, _refused)
    app[CONNECTIONS] = connections  # before the runner freezes the app
    runner = _GuardedRunner(
        app,
        connections,
        keepalive_timeout=config.keepalive_timeout,  # aiohttp's own timer agrees with ours
        handle_signals=True,
        handler_cancellation=True,  # a client that hangs up cancels the upstream call
        access_log=None,  # our middleware writes one access line with provider and model
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, reuse_port=reuse_port or None)
        await site.start()
        if on_listening is not None:
            on_listening(runner)

        async def sweep() -> None:
            connections.sweep()

        async with every(SWEEP_EVERY, sweep):
            await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()


# --- quiet logs -------------------------------------------------------------------------


class _Throttled:
    """One log line per ``every`` seconds for a recurring event, with how many were not
    logged meanwhile."""

    def __init__(self, event: str, every: float = 10.0) -> None:
        self.event, self.every = event, every
        self.last = -every
        self.skipped = 0

    def note(self, **fields: Any) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.skipped += 1
            return
        log.warning(self.event, suppressed=self.skipped, **fields)
        self.last, self.skipped = now, 0


_accept_errors = _Throttled("accept_failed")
_refused = _Throttled("connection_refused")


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """accept() failing (out of file descriptors) is logged as a throttled line; anything
    else goes to asyncio's default handler."""
    exc = context.get("exception")
    if isinstance(exc, OSError) and "accept" in str(context.get("message", "")):
        _accept_errors.note(error=str(exc))
        return
    loop.default_exception_handler(context)


class _MalformedHttp(logging.Filter):
    """aiohttp logs every malformed request with a traceback ("Error handling request");
    we log them throttled, one line each, and let other records through."""

    def __init__(self) -> None:
        super().__init__()
        self.throttle = _Throttled("malformed_http")

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Error handling request"):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        text = f"{type(exc).__name__}: {exc}" if exc else record.getMessage()
        self.throttle.note(error=" ".join(text.split()))  # one line
        return False


def quiet_malformed_http() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _MalformedHttp) for f in server_log.filters):
        server_log.addFilter(_MalformedHttp())
