"""The app factory: plugins -> registry -> aiohttp application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from g4f_server.appkeys import CONFIG, HTTP, PLUGIN_MANAGER
from g4f_server.config import AppConfig
from g4f_server.controls import wiring as controls
from g4f_server.controls.apikeys import KEYRING
from g4f_server.logs import configure_logging_once, get_logger
from g4f_server.periodic import every, in_background
from g4f_server.pipeline.cache import setup_cache
from g4f_server.pipeline.media import MEDIA, StoredMediaPublisher
from g4f_server.providers.context import make_context
from g4f_server.providers.loader import load_plugins, make_plugin_manager
from g4f_server.providers.model_table import ModelTable
from g4f_server.providers.probes import PROBER, Prober, probe_timeout
from g4f_server.providers.registry import REGISTRY, Registry
from g4f_server.storage.factory import setup_storage, storage_ctx
from g4f_server.storage.interfaces import MEDIA_STORE
from g4f_server.web import cors
from g4f_server.web.middleware import Edge
from g4f_server.web.routes import setup_routes

log = get_logger("g4f_server.app")


def create_app(
    config: AppConfig | None = None,
    *,
    plugins: list[object] | None = None,
    load_entrypoints: bool = True,
) -> web.Application:
    """Build the gateway. ``plugins`` are registered as well as (or, with
    ``load_entrypoints=False``, instead of) the installed entry points."""
    config = config or AppConfig.load()
    # gunicorn & co. call this factory without our runner, which sets logging up first.
    configure_logging_once(debug=config.debug, json_logs=config.json_logs)
    pm = make_plugin_manager()
    failures = load_plugins(
        pm,
        plugins=plugins,
        load_entrypoints=load_entrypoints,
        allow=config.load_plugins,
        deny=config.disabled_plugins,
        settings=config.plugin_settings(),
    )
    registry = Registry.from_plugins(
        pm, failures, priority=config.priority, ignored=config.ignored_providers
    )
    registry.table = ModelTable.build(config.models)
    # No aiohttp middleware: the route table wraps each handler in the edge (timers, CORS,
    # request id, key, caps, errors, access line), which calls the controls' hooks (metrics:
    # first and last, they time everything), with their middlewares inside it (limits:
    # after the key check).
    edge = Edge(config, inner=controls.middlewares(config))
    app = web.Application(
        client_max_size=config.max_body_size,
        # Every runner (the tests' too) leaves a body as sent: web/body.py inflates it.
        handler_args={"auto_decompress": False},
    )
    app[CONFIG] = config
    app[PLUGIN_MANAGER] = pm
    app[REGISTRY] = registry
    app[PROBER] = Prober(registry, lambda e: make_context(app, e), timeout=probe_timeout(config))
    setup_storage(app, config)  # every backend of storage/interfaces.py (storage/factory.py)
    app[MEDIA] = StoredMediaPublisher(app[MEDIA_STORE], config.public_url)
    setup_cache(app, config)  # the response cache (off unless --cache-ttl)
    controls.setup(app, config)  # keys, limits, metrics, demo, and their observers
    app[cors.CORS] = cors.CorsPolicy.build(
        config.cors_origins, has_key=KEYRING in app, bind=config.host
    )
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(storage_ctx)
    app.cleanup_ctx.append(_models)
    app.cleanup_ctx.append(_probes)
    edge.attach(app)  # after the key ring and the CORS policy: it reads them once
    setup_routes(app, edge)
    return app


def _proxy_from_env() -> bool:
    names = {"http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "netrc"}
    return any(key.lower() in names for key in os.environ)


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    """One shared upstream session: pooled keep-alive connections for every provider."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=256, ttl_dns_cache=300)
    # trust_env costs two thread-pool round trips per upstream request (~/.netrc, proxy
    # lookup); only pay for it when the environment actually configures a proxy.
    # No cookie jar: the session is shared by every user, so a cookie one upstream call
    # receives must never ride along on another user's request. Providers that need
    # cookies send them explicitly.
    async with aiohttp.ClientSession(
        connector=connector, trust_env=_proxy_from_env(), cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        app[HTTP] = session
        yield


async def _models(app: web.Application) -> AsyncIterator[None]:
    """Load every provider's model list at start-up, then refresh it in the background."""
    config, registry = app[CONFIG], app[REGISTRY]

    async def refresh() -> None:
        await registry.refresh_models(lambda e: make_context(app, e), config.startup_timeout)

    await refresh()
    log.info(
        "providers_ready",
        providers=registry.summary(),
        failed={e.name: e.error for e in registry.ordered if not e.listed}
        | {f.name: f.error for f in registry.failed},
    )

    async with every(config.models_ttl, refresh):
        yield


async def _probes(app: web.Application) -> AsyncIterator[None]:
    """With --probe-interval: check every provider in the background (probes.py)."""
    interval = app[CONFIG].probe_interval
    if not interval:
        yield
        return
    async with in_background(app[PROBER].run(interval)):
        yield
