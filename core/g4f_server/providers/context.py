"""Building the ProviderContext handed to a provider for one call."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from g4f_server.appkeys import CONFIG, HTTP, REQUEST_ID
from g4f_server.logs import get_logger
from g4f_server.provider import ProviderContext
from g4f_server.providers.registry import ProviderEntry
from g4f_server.storage.interfaces import COOKIES


@functools.cache
def _provider_logger(name: str) -> Any:
    # Bound once per provider: the request id comes from contextvars, not from binding.
    return get_logger(f"g4f_server.provider.{name}").bind(provider=name)


def make_context(
    app: web.Application,
    entry: ProviderEntry,
    request: web.Request | None = None,
    *,
    api_key: str | None = None,
    proxy: str | None = None,
    conversation_id: str | None = None,
    conversation: dict[str, Any] | None = None,
) -> ProviderContext:
    """``proxy``: the request's, else the server's (``--proxy``)."""
    request_id = request.get(REQUEST_ID, "") if request is not None else ""
    return call_context(app, request_id, api_key, proxy, conversation_id, conversation, entry)


def call_context(
    app: web.Application,
    request_id: str,
    api_key: str | None,
    proxy: str | None,
    conversation_id: str | None,
    conversation: dict[str, Any] | None,
    entry: ProviderEntry,
) -> ProviderContext:
    """``make_context`` for the chat turn, positional (keywords cost a dict per call),
    the entry last: ``functools.partial`` over a request's values gives the turn its
    context maker without a closure (and its frame) per request.

    A context is made per call, never shared: a provider may keep it across awaits while
    other requests run, and it sets ``response_headers`` on it. What is the same for every
    call of a provider in this app (the session, its logger, its state, the timeout and
    the server's proxy, its cookie accessor) is looked up once and kept on the entry."""
    http = app[HTTP]
    parts = entry.context_parts
    if parts is None or parts[0] is not http:  # first call, or another app's session
        parts = entry.context_parts = _shared_parts(app, entry, http)
    http, log, state, timeout, server_proxy, cookies = parts
    # Positional, in the field order: keywords cost a dict per call, on every request.
    ctx = ProviderContext(
        http,
        log,
        state,
        timeout,
        proxy or server_proxy,
        api_key,
        request_id,
        conversation_id,
        conversation,
    )
    if cookies is not None:
        ctx.cookies = cookies
    return ctx


def _shared_parts(app: web.Application, entry: ProviderEntry, http: Any) -> tuple[Any, ...]:
    config = app[CONFIG]
    store = app.get(COOKIES)
    # Only the domains the provider declared: one provider never reads another's login.
    cookies = store.accessor(entry.info.cookie_domains) if store is not None else None
    logger = _provider_logger(entry.name)
    return http, logger, entry.state, config.timeout, config.proxy, cookies
