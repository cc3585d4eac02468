"""Wiring the stores into the app: built with the app, opened and swept by a cleanup ctx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from g4f_server.appkeys import CONFIG, CONVERSATIONS, COOKIES, MEDIA, MEDIA_STORE, RESPONSES
from g4f_server.config import AppConfig
from g4f_server.logs import get_logger
from g4f_server.periodic import every
from g4f_server.pipeline.media import StoredMediaPublisher
from g4f_server.storage import DataDir
from g4f_server.storage.cookies import CookieStore
from g4f_server.storage.media import MediaStore
from g4f_server.storage.sqlite import SQLiteConversationStore

log = get_logger("g4f_server.storage")
SWEEP_INTERVAL = 600.0  # seconds between retention sweeps (media age/size, expired rows)


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
    app[MEDIA] = StoredMediaPublisher(media, config.public_url)
    app[COOKIES] = CookieStore(data.cookies)
    app[CONVERSATIONS] = app[RESPONSES] = SQLiteConversationStore(
        data.conversations_db, ttl=config.conversation_ttl, max_rows=config.conversation_max
    )


def _setup_shared(app: web.Application, config: AppConfig) -> None:
    """Every store on Redis (``--state-url``); imported only then."""
    from g4f_server.storage.redis import state as redis_state

    state = redis_state.RedisState(config)
    media = redis_state.RedisMediaStore(
        state,
        max_age=config.media_max_age,
        max_bytes=config.media_max_bytes,
        max_file_size=config.media_max_file_size,
    )
    app[MEDIA_STORE] = media  # type: ignore[assignment]  # the same save/load contract
    app[MEDIA] = StoredMediaPublisher(media, config.public_url)  # type: ignore[arg-type]
    app[COOKIES] = redis_state.RedisCookieStore(state)
    app[CONVERSATIONS] = app[RESPONSES] = redis_state.RedisConversationStore(
        state, ttl=config.conversation_ttl, max_rows=config.conversation_max
    )


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    if config.state_url:
        from g4f_server.storage.redis.state import shared_state_ctx

        cookies = app[COOKIES]
        async with shared_state_ctx(cookies.state, cookies):  # type: ignore[attr-defined]
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
