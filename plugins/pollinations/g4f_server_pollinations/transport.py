"""One way to call Pollinations: shared session, timeouts, proxy, error mapping, and the
client-side limit that keeps anonymous bursts under the upstream's per-IP limits."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp

from g4f_server.errors import G4FError, ProviderRateLimitError
from g4f_server.provider import ProviderContext
from g4f_server_pollinations import errors
from g4f_server_pollinations.config import Settings

_ERROR_BODY_LIMIT = 64 * 1024


@functools.lru_cache(maxsize=64)  # positional: a keyword makes the cache key a tuple more
def client_timeout(seconds: float, watched: bool = False) -> aiohttp.ClientTimeout:
    """Immutable, so one per distinct value. No total limit: a long answer is fine as long
    as bytes keep coming.

    ``watched``: the kernel bounds every wait of this call itself (chat: ``G4F_TIMEOUT``
    for the first event, counted from before the request, so it is always the first to
    fire; ``G4F_STREAM_TIMEOUT`` for each gap). Such a call gets no socket read timer at
    all: aiohttp would arm it when the body is sent, re-arm it on every network read and
    cancel it at the end (~8 k instructions and a timer handle per request), and it would
    cut a pause between chunks at ``ctx.timeout`` where the operator allowed
    ``G4F_STREAM_TIMEOUT``. Calls the kernel does not watch (model lists, images, speech,
    transcription) keep it: there the plugin bounds the wait itself."""
    connect = min(30.0, seconds)
    if watched:
        return aiohttp.ClientTimeout(total=None, sock_connect=connect)
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=seconds)


class call:  # lower case: used like the function it replaced, `async with call(...) as resp`
    """An upstream response with a 2xx status; any failure (also while the caller reads
    the body inside the ``async with``) becomes a ``g4f_server.errors`` exception.

    A class rather than an ``@asynccontextmanager``: it is on every request's path, and
    the generator version costs a generator, a wrapper and a ``StopAsyncIteration`` per
    call. It awaits the request itself and releases the response on the way out, as
    aiohttp's own ``async with session.request(...)`` would, without that form's two
    further context managers (four more coroutines per call).

    ``slot``: an ``anonymous_slot`` held from before the request until after the release,
    entered here rather than by a context manager of its own around this one, so a keyed
    call (no slot) has no further layer at all (a ``nullcontext`` was two coroutines).
    """

    __slots__ = (
        "_ctx",
        "_keyed",
        "_kwargs",
        "_method",
        "_resp",
        "_slot",
        "_timeout",
        "_url",
        "_watched",
        "_what",
    )

    def __init__(
        self,
        ctx: ProviderContext,
        method: str,
        url: Any,
        *,
        keyed: bool,
        what: str,
        timeout: float | None = None,
        watched: bool = False,
        slot: AbstractAsyncContextManager[None] | None = None,
        **kwargs: Any,
    ) -> None:
        self._ctx, self._method, self._url = ctx, method, url
        self._keyed, self._what, self._timeout, self._kwargs = keyed, what, timeout, kwargs
        self._watched = watched  # the kernel bounds its waits: no socket timer (client_timeout)
        self._slot = slot
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        ctx, slot = self._ctx, self._slot
        if slot is not None:
            await slot.__aenter__()
        try:
            try:
                self._resp = resp = await ctx.http.request(
                    self._method,
                    self._url,
                    timeout=client_timeout(self._timeout or ctx.timeout, self._watched),
                    proxy=ctx.proxy,
                    **self._kwargs,
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise errors.for_exception(exc, self._what) from exc
            if resp.status < 300:
                return resp
            raise await refusal(ctx, resp, self._what, keyed=self._keyed)
        except BaseException:
            if slot is not None:  # __aexit__ is not called when __aenter__ fails
                await slot.__aexit__(None, None, None)  # the slot only ever releases itself
            raise

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        resp: aiohttp.ClientResponse = self._resp  # type: ignore[assignment]
        try:
            try:  # what leaving aiohttp's `async with` does: the connection goes back
                resp.release()
                await resp.wait_for_close()
            except (TimeoutError, aiohttp.ClientError) as release_error:
                exc = exc or release_error  # the request body failed to send, say
            if isinstance(exc, (TimeoutError, aiohttp.ClientError)) and not isinstance(
                exc, G4FError
            ):
                raise errors.for_exception(exc, self._what) from exc
        finally:
            if (slot := self._slot) is not None:
                await slot.__aexit__(None, None, None)


async def refusal(
    ctx: ProviderContext, resp: aiohttp.ClientResponse, what: str, *, keyed: bool
) -> G4FError:
    """The error an upstream answer with a status of 300 or more means; its body is read
    (up to 64 KiB, for the message) and the response released."""
    try:
        body = await resp.content.read(_ERROR_BODY_LIMIT)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise errors.for_exception(exc, what) from exc
    finally:
        resp.release()
        await resp.wait_for_close()
    ctx.log.info("pollinations_upstream_error", what=what, status=resp.status)
    return errors.for_status(resp.status, body, resp.headers, keyed=keyed)


# The most of a call's budget kept for the upstream's answer when deciding on a wait.
RESERVE = 5.0


class Deadline:
    """The time budget of one provider call (``ctx.timeout``, the gateway's ``--timeout``,
    counted from when the call began). A wait the plugin chooses, for a queue slot or an
    upstream's ``Retry-After``, is taken only when it leaves the call a reserve for the
    upstream's answer; a wait that does not fit is a 429 at once, never a wait that the
    gateway cuts off as a 504 the upstream never saw."""

    __slots__ = ("at", "reserve")

    def __init__(self, ctx: ProviderContext) -> None:
        self.at = time.monotonic() + ctx.timeout
        self.reserve = min(RESERVE, ctx.timeout / 4)

    def room(self) -> float:
        """How long a wait may still last."""
        return self.at - self.reserve - time.monotonic()


def hold_off(ctx: ProviderContext, kind: str, seconds: float) -> None:
    """No anonymous call to the ``kind`` host starts for ``seconds``: the host said so (a
    429's ``Retry-After``), and it limits this server's IP, not one request."""
    starts: dict[str, float] = ctx.state.setdefault("anon_next_start", {})
    until = time.monotonic() + seconds
    if until > starts.get(kind, 0.0):
        starts[kind] = until


def _queued(kind: str, wait: float | None, retry_after: float) -> ProviderRateLimitError:
    if wait is None:
        what = "is queued behind others on this server"
    else:
        what = f"would have to wait {wait:.0f}s more to start (the host's per-IP limit)"
    return ProviderRateLimitError(
        f"Too many anonymous Pollinations {kind} requests: this one {what}, longer than it "
        "may wait, and was not sent; try again shortly, or set POLLINATIONS_API_KEY",
        code="pollinations_queue_full",
        retry_after=retry_after,
    )


@asynccontextmanager
async def anonymous_slot(
    ctx: ProviderContext,
    cfg: Settings,
    kind: str,
    *,
    keyed: bool,
    deadline: Deadline | None = None,
) -> AsyncIterator[None]:
    """Hold one of the few concurrent slots the legacy hosts allow per IP, and start no
    sooner than the host's interval after the previous start, or than the end of a
    ``Retry-After`` it gave (``hold_off``). Keyed calls are limited per account upstream,
    so they pass straight through.

    The wait is bounded by ``POLLINATIONS_QUEUE_TIMEOUT`` and by the call's budget
    (``deadline``, by default the budget from now): a call that cannot start in time is a
    local 429, and the upstream never sees it."""
    if keyed:
        yield
        return
    deadline = deadline or Deadline(ctx)
    text = kind == "text"
    limit = cfg.anon_text_concurrency if text else cfg.anon_image_concurrency
    interval = cfg.anon_text_interval if text else cfg.anon_image_interval
    slots: dict[tuple[str, int], asyncio.Semaphore] = ctx.state.setdefault("anon_slots", {})
    sem = slots.setdefault((kind, limit), asyncio.Semaphore(limit))
    patience = min(cfg.queue_timeout, deadline.room())
    queued_at = time.monotonic()
    try:
        if patience <= 0:
            raise TimeoutError
        await asyncio.wait_for(sem.acquire(), patience)
    except TimeoutError:
        raise _queued(kind, None, max(1.0, interval)) from None
    try:
        # Reserved without an await between read and write: with several slots each
        # call still gets its own start time.
        starts: dict[str, float] = ctx.state.setdefault("anon_next_start", {})
        now = time.monotonic()
        start = max(now, starts.get(kind, now))
        if start - now > patience - (now - queued_at):  # it would start too late: not at all
            raise _queued(kind, start - now, math.ceil(start - now))
        starts[kind] = start + interval
        if start > now:
            await asyncio.sleep(start - now)
        yield
    finally:
        sem.release()
