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
    **fields: Any,
) -> ProviderContext:
    config = app[CONFIG]
    request_id = request.get(REQUEST_ID, "") if request is not None else ""
    fields.setdefault("proxy", config.proxy)
    if COOKIES in app:
        # Only the domains the provider declared: one provider never reads another's login.
        fields.setdefault("cookies", app[COOKIES].accessor(entry.info.cookie_domains))
    return ProviderContext(
        http=app[HTTP],
        log=_provider_logger(entry.name),
        state=entry.state,
        timeout=config.timeout,
        request_id=request_id,
        **fields,
    )
