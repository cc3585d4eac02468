"""One way to call Pollinations: shared session, timeouts, proxy, error mapping, and the
client-side limit that keeps anonymous bursts under the upstream's per-IP limits."""

from __future__ import annotations

import asyncio
import functools
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
    # long as bytes keep coming.
    return aiohttp.ClientTimeout(total=None, sock_connect=min(30.0, seconds), sock_read=seconds)


@asynccontextmanager
async def call(
    ctx: ProviderContext,
    method: str,
    url: Any,
    *,
    keyed: bool,
    what: str,
    timeout: float | None = None,
    **kwargs: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """An upstream response with a 2xx status; any failure (also while the caller reads
    the body inside the ``async with``) becomes a ``g4f_server.errors`` exception."""
    try:
        async with ctx.http.request(
            method,
            url,
            timeout=client_timeout(timeout or ctx.timeout),
            proxy=ctx.proxy,
            **kwargs,
        ) as resp:
            if resp.status >= 300:
                body = await resp.content.read(_ERROR_BODY_LIMIT)
                ctx.log.info("pollinations_upstream_error", what=what, status=resp.status)
                raise errors.for_status(resp.status, body, resp.headers, keyed=keyed)
            yield resp
    except G4FError:
        raise
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise errors.for_exception(exc, what) from exc


@asynccontextmanager
async def anonymous_slot(
    ctx: ProviderContext, cfg: Settings, kind: str, *, keyed: bool
) -> AsyncIterator[None]:
    """Hold one of the few concurrent slots the legacy hosts allow per IP (keyed calls are
    limited per account upstream, so they pass straight through)."""
    if keyed:
        yield
        return
    limit = cfg.anon_text_concurrency if kind == "text" else cfg.anon_image_concurrency
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
        yield
    finally:
        sem.release()
