"""Building the ProviderContext handed to a provider for one call."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG, COOKIES, HTTP, REQUEST_ID
from g4f_server.controls import demo
from g4f_server.controls.apikeys import bearer_words
from g4f_server.logs import get_logger
from g4f_server.provider import ProviderContext
from g4f_server.providers.registry import ProviderEntry


def provider_key(request: web.Request | None, body_key: str | None) -> str | None:
    """A key the client passed for the provider (never the gateway's own key): the body's
    ``api_key``, else ``X-Provider-Key``, else the second word of
    ``Authorization: Bearer <server key> <provider key>``."""
    if body_key:
        if request is not None and request.app[CONFIG].demo:
            raise demo.refused("Per-request provider keys")
        return body_key
    if request is None:
        return None
    if header := request.headers.get("X-Provider-Key"):
        return _checked(header, "X-Provider-Key")
    words = bearer_words(request)
    if len(words) == 2:
        return _checked(words[1].strip(), "Authorization")
    return None


def _checked(value: str, header: str) -> str:
    # Imported here: only request handlers get this far, pydantic is loaded by then.
    from g4f_server.requests import header_safe

    try:
        return header_safe(value)
    except ValueError as exc:
        raise errors.InvalidRequestError(
            f"Invalid provider key in the {header} header: {exc}", param=header
        ) from None


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
