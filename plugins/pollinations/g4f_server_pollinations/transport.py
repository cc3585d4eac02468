"""One way to call Pollinations: shared session, timeouts, proxy, error mapping, and the
client-side limit that keeps anonymous bursts under the upstream's per-IP limits."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from g4f_server.errors import G4FError, ProviderRateLimitError
from g4f_server.provider import ProviderContext
from g4f_server_pollinations import errors
from g4f_server_pollinations.config import Settings

_ERROR_BODY_LIMIT = 64 * 1024


@functools.lru_cache(maxsize=32)
def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    # Immutable, so one per distinct value. No total limit: a long stream is fine as
    # long as bytes keep coming (chat hands even that to the kernel: stop_read_timer).
    return aiohttp.ClientTimeout(total=None, sock_connect=min(30.0, seconds), sock_read=seconds)


def stop_read_timer(resp: aiohttp.ClientResponse) -> None:
    """No per-read socket timer for the rest of this body: from here on, waits are the
    kernel's to bound (its first-event, idle and whole-answer limits).

    aiohttp re-arms ``sock_read`` on every network read (~5 k instructions each, 22 on a
    paced streamed answer), and it would cut a pause between chunks at ``ctx.timeout``
    where the operator allowed ``G4F_STREAM_TIMEOUT``. Until the headers arrive the timer
    stays: an upstream that never answers is caught by the plugin itself."""
    protocol = resp.connection.protocol if resp.connection is not None else None
    if protocol is not None and hasattr(protocol, "read_timeout"):
        protocol.read_timeout = None
        protocol.start_timeout()  # re-evaluated: the timer armed by the last read goes


class call:  # lower case: used like the function it replaced, `async with call(...) as resp`
    """An upstream response with a 2xx status; any failure (also while the caller reads
    the body inside the ``async with``) becomes a ``g4f_server.errors`` exception.

    A class rather than an ``@asynccontextmanager``: it is on every request's path, and
    the generator version costs a generator, a wrapper and a ``StopAsyncIteration`` per
    call.
    """

    __slots__ = ("_ctx", "_keyed", "_kwargs", "_method", "_request", "_timeout", "_url", "_what")

    def __init__(
        self,
        ctx: ProviderContext,
        method: str,
        url: Any,
        *,
        keyed: bool,
        what: str,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        self._ctx, self._method, self._url = ctx, method, url
        self._keyed, self._what, self._timeout, self._kwargs = keyed, what, timeout, kwargs
        self._request: Any = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        ctx = self._ctx
        self._request = ctx.http.request(
            self._method,
            self._url,
            timeout=client_timeout(self._timeout or ctx.timeout),
            proxy=ctx.proxy,
            **self._kwargs,
        )
        try:
            resp: aiohttp.ClientResponse = await self._request.__aenter__()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise errors.for_exception(exc, self._what) from exc
        if resp.status < 300:
            return resp
        try:
            body = await resp.content.read(_ERROR_BODY_LIMIT)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise errors.for_exception(exc, self._what) from exc
        finally:
            await self._request.__aexit__(None, None, None)
        ctx.log.info("pollinations_upstream_error", what=self._what, status=resp.status)
        raise errors.for_status(resp.status, body, resp.headers, keyed=self._keyed)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            await self._request.__aexit__(exc_type, exc, tb)  # the connection goes back
        except (TimeoutError, aiohttp.ClientError) as release_error:
            exc = exc or release_error  # the request body failed to send, say
        if isinstance(exc, (TimeoutError, aiohttp.ClientError)) and not isinstance(exc, G4FError):
            raise errors.for_exception(exc, self._what) from exc


@asynccontextmanager
async def anonymous_slot(
    ctx: ProviderContext, cfg: Settings, kind: str, *, keyed: bool
) -> AsyncIterator[None]:
    """Hold one of the few concurrent slots the legacy hosts allow per IP, and start no
    sooner than the host's interval after the previous start (keyed calls are limited per
    account upstream, so they pass straight through)."""
    if keyed:
        yield
        return
    text = kind == "text"
    limit = cfg.anon_text_concurrency if text else cfg.anon_image_concurrency
    slots: dict[tuple[str, int], asyncio.Semaphore] = ctx.state.setdefault("anon_slots", {})
    sem = slots.setdefault((kind, limit), asyncio.Semaphore(limit))
    try:
        await asyncio.wait_for(sem.acquire(), cfg.queue_timeout)
    except TimeoutError:
        raise ProviderRateLimitError(
            f"Too many anonymous Pollinations {kind} requests are queued on this server; "
            "try again shortly, or set POLLINATIONS_API_KEY",
            retry_after=cfg.queue_timeout,
        ) from None
    try:
        interval = cfg.anon_text_interval if text else cfg.anon_image_interval
        if interval:
            # Reserved without an await between read and write: with several slots each
            # call still gets its own start time.
            starts: dict[str, float] = ctx.state.setdefault("anon_next_start", {})
            now = time.monotonic()
            start = max(now, starts.get(kind, now))
            starts[kind] = start + interval
            if start > now:
                await asyncio.sleep(start - now)
        yield
    finally:
        sem.release()
