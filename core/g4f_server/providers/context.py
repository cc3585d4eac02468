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
    config = app[CONFIG]
    # Positional, in the field order: keywords cost a dict per call, on every request.
    ctx = ProviderContext(
        app[HTTP],
        _provider_logger(entry.name),
        entry.state,
        config.timeout,
        proxy or config.proxy,
        api_key,
        request.get(REQUEST_ID, "") if request is not None else "",
        conversation_id,
        conversation,
    )
    cookies = app.get(COOKIES)
    if cookies is not None:
        # Only the domains the provider declared: one provider never reads another's login.
        ctx.cookies = cookies.accessor(entry.info.cookie_domains)
    return ctx
