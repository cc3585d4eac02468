"""``g4f-server`` with experimental hot-path changes applied at start-up (monkeypatches).

Used by ``bench/ab.py`` to measure a proposed kernel change before anyone writes it for
real. Patches are named in ``G4F_BENCH_PATCHES`` (comma-separated); with none, this is
plain ``g4f-server``. They reach into kernel internals, so a kernel refactor may break
them: they are measuring tools, not code to ship.

- ``notrust``: the shared upstream ClientSession without ``trust_env`` (aiohttp then skips
  two thread-pool round trips per upstream request: ~/.netrc and the proxy variables).
- ``cork``: streamed answers coalesce the SSE chunks produced in one event-loop turn into
  one socket write (flushed as soon as the handler waits for the upstream).
- ``fastid``: request and completion ids from ``random.getrandbits`` instead of
  ``uuid4``/``secrets`` (one getrandom syscall less each).
- ``quietreset``: a client that hung up (ConnectionResetError) is logged as one info line,
  not as an unhandled error with a traceback.
- ``gcfreeze``: ``gc.freeze()`` once the app has started, so the collector stops
  re-scanning the tens of thousands of start-up objects (imports, schemas) on every
  full collection.
- ``plainexc``: console logs render tracebacks with the stdlib formatter instead of rich's
  (which renders every local of every frame: ~0.5 s of event-loop time per traceback).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import types
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web


def _notrust() -> None:
    import aiohttp

    from g4f_server import app as app_module

    async def http_session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=256, ttl_dns_cache=300)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            app[app_module.HTTP] = session
            yield

    app_module._http_session = http_session


class CorkedStreamResponse(web.StreamResponse):
    """Writes are buffered and flushed by a task that runs once the handler yields."""

    _LIMIT = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cork: list[bytes] = []
        self._cork_size = 0
        self._flusher: asyncio.Task[None] | None = None
        self._flush_error: BaseException | None = None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._flush_error is not None:
            raise self._flush_error
        self._cork.append(bytes(data))
        self._cork_size += len(data)
        if self._cork_size >= self._LIMIT:
            await self._flush()
        elif self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush(self) -> None:
        if self._cork:
            data = b"".join(self._cork)
            self._cork.clear()
            self._cork_size = 0
            await super().write(data)

    async def _flush_later(self) -> None:
        self._flusher = None
        try:
            await self._flush()
        except (ConnectionError, RuntimeError) as exc:
            self._flush_error = exc

    async def write_eof(self, data: bytes = b"") -> None:
        if self._cork:
            data = b"".join(self._cork) + data
            self._cork.clear()
            self._cork_size = 0
        await super().write_eof(data)


def _cork() -> None:
    from g4f_server import sse

    async def open_stream(request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        # Same status and headers as sse.open_stream, in the corked class.
        response = CorkedStreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                **headers,
            },
        )
        await response.prepare(request)
        return response

    sse.open_stream = open_stream


def _fastid() -> None:
    from g4f_server import middleware
    from g4f_server.protocols import openai_chat

    class FastUUID:
        __slots__ = ("hex",)

        def __init__(self) -> None:
            self.hex = f"{random.getrandbits(128):032x}"

    middleware.uuid = types.SimpleNamespace(uuid4=FastUUID)  # type: ignore[attr-defined]
    openai_chat.secrets = types.SimpleNamespace(  # type: ignore[attr-defined]
        token_hex=lambda n: f"{random.getrandbits(8 * n):0{2 * n}x}"
    )


class _QuietResets:
    """The middleware's logger, with client hang-ups demoted to an info line."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def exception(self, event: str, **kw: Any) -> Any:
        if isinstance(sys.exc_info()[1], ConnectionResetError):
            return self._inner.info("client_disconnected", **kw)
        return self._inner.exception(event, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _quietreset() -> None:
    from g4f_server import middleware

    middleware.log = _QuietResets(middleware.log)  # type: ignore[assignment]


def _plainexc() -> None:
    import structlog

    original = structlog.dev.ConsoleRenderer

    def console_renderer(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("exception_formatter", structlog.dev.plain_traceback)
        return original(*args, **kwargs)

    structlog.dev.ConsoleRenderer = console_renderer  # type: ignore[misc]


def _gcfreeze() -> None:
    import gc

    from g4f_server import app as app_module

    original = app_module.create_app

    async def freeze(app: web.Application) -> None:
        gc.collect()
        gc.freeze()

    def create_app(*args: Any, **kwargs: Any) -> web.Application:
        application = original(*args, **kwargs)
        application.on_startup.append(freeze)
        return application

    app_module.create_app = create_app


PATCHES = {
    "gcfreeze": _gcfreeze,
    "notrust": _notrust,
    "cork": _cork,
    "fastid": _fastid,
    "quietreset": _quietreset,
    "plainexc": _plainexc,
}


def main() -> None:
    for name in filter(None, os.environ.get("G4F_BENCH_PATCHES", "").split(",")):
        PATCHES[name.strip()]()
    from g4f_server.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
