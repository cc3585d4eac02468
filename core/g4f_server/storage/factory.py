"""The one place backends are built: every interface of ``storage/interfaces.py`` for
the app, on the data folder (the embedded default) or, with ``--state-url``, on Redis,
where every backend of a worker shares one client (``redis_state``). Built with the app,
opened and swept by a cleanup ctx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from g4f_server.appkeys import CONFIG
from g4f_server.config import AppConfig
from g4f_server.logs import get_logger
from g4f_server.periodic import every
from g4f_server.storage import DataDir
from g4f_server.storage.cookies import CookieStore
from g4f_server.storage.interfaces import (
    CONVERSATIONS,
    COOKIES,
    MEDIA_STORE,
    RESPONSES,
    Limiter,
    ResponseCache,
)
from g4f_server.storage.media import MediaStore
from g4f_server.storage.memory import MemoryCache
from g4f_server.storage.sqlite import SQLiteConversationStore

log = get_logger("g4f_server.storage")
SWEEP_INTERVAL = 600.0  # seconds between retention sweeps (media age/size, expired rows)


STATE: web.AppKey[Any] = web.AppKey("redis_state")  # the worker's one Redis client


def redis_state(app: web.Application, config: AppConfig) -> Any:
    """The app's ``RedisState`` (its client and key prefix), made on first use: the
    stores, the response cache and the rate limiter all talk through it."""
    state = app.get(STATE)
    if state is None:
        from g4f_server.storage.redis.state import RedisState

        state = app[STATE] = RedisState(config)
    return state


def make_cache(app: web.Application, config: AppConfig) -> ResponseCache:
    """The response cache's bytes: in this process, or on Redis with a state URL."""
    if config.state_url:
        from g4f_server.storage.redis.state import RedisCache

        return RedisCache(config, redis_state(app, config))
    return MemoryCache(config.cache_max_bytes)


def make_limiter(app: web.Application, config: AppConfig) -> Limiter | None:
    """The rate limiter's counters on Redis with a state URL; None: the embedded one
    (which lives with the limits, ``controls/limits.py``)."""
    if not config.state_url:
        return None
    from g4f_server.storage.redis.limits import RedisLimiter

    return RedisLimiter(config, redis_state(app, config))


def response_bounds(config: AppConfig) -> dict[str, int]:
    """The stored responses' bounds in bytes: one record, all of them. A record larger
    than the whole store would only push everything out and then itself."""
    total = config.response_store_max_bytes
    return {"max_record": min(config.response_max_bytes, total), "max_bytes": total}


def setup_storage(app: web.Application, config: AppConfig) -> None:
    """Create the stores (no I/O yet: folders are made when the app starts)."""
    if config.state_url:
        _setup_shared(app, config)
        return
    data = DataDir(config.data_dir.expanduser())
    media = MediaStore(
        data.media,
        max_age=config.media_max_age,
        max_bytes=config.media_max_bytes,
        max_file_size=config.media_max_file_size,
    )
    app[MEDIA_STORE] = media
    app[COOKIES] = CookieStore(data.cookies)
    app[CONVERSATIONS] = app[RESPONSES] = SQLiteConversationStore(
        data.conversations_db,
        ttl=config.conversation_ttl,
        max_rows=config.conversation_max,
        **response_bounds(config),
    )


def _setup_shared(app: web.Application, config: AppConfig) -> None:
    """Every store on Redis (``--state-url``); imported only then."""
    from g4f_server.storage.redis import state as shared

    state = redis_state(app, config)
    media = shared.RedisMediaStore(
        state,
        max_age=config.media_max_age,
        max_bytes=config.media_max_bytes,
        max_file_size=config.media_max_file_size,
    )
    app[MEDIA_STORE] = media  # type: ignore[assignment]  # the same save/load contract
    app[COOKIES] = shared.RedisCookieStore(state)
    app[CONVERSATIONS] = app[RESPONSES] = shared.RedisConversationStore(
        state,
        ttl=config.conversation_ttl,
        max_rows=config.conversation_max,
        **response_bounds(config),
    )


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    if config.state_url:
        from g4f_server.storage.redis.state import shared_state_ctx

        async with shared_state_ctx(app[STATE], app[COOKIES]):
            yield
        return
    await asyncio.to_thread(DataDir(config.data_dir.expanduser()).ensure)

    async def sweep() -> None:
        try:
            await app[MEDIA_STORE].prune_async()
            purge = getattr(app[CONVERSATIONS], "purge", None)
            if purge is not None:
                await purge()
        except Exception as exc:  # a full disk must not stop the server
            log.warning("storage_sweep_failed", error=repr(exc))

    await sweep()
    async with every(min(SWEEP_INTERVAL, config.media_max_age), sweep):
        yield
    await app[CONVERSATIONS].close()
    if app[RESPONSES] is not app[CONVERSATIONS]:  # a backend of its own
        await app[RESPONSES].close()
