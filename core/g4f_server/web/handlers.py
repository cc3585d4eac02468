"""Route handlers as the web layer sees them: imported by the first request they serve
(``lazy_handler``), and the marks a handler carries for the edge: its request body's
schema (``request_body``, read by the OpenAPI generator) and its error shape
(``errors_as``, read by the edge), so that the edge never imports a protocol.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from pydantic import BaseModel

    from g4f_server.errors import G4FError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorBody = Callable[["G4FError"], dict[str, Any]]


def lazy_handler(target: str) -> Handler:
    """A handler that imports ``module:function`` on its first call and then forwards
    to it. ``.resolve()`` returns the real handler (the OpenAPI builder reads it)."""
    module_name, _, function = target.partition(":")
    resolved: Handler | None = None

    def resolve() -> Handler:
        nonlocal resolved
        if resolved is None:
            module = importlib.import_module(module_name)
            resolved = getattr(module, function)
        return resolved

    async def handle(request: web.Request) -> web.StreamResponse:
        return await (resolved or resolve())(request)

    handle.resolve = resolve  # type: ignore[attr-defined]
    handle.__name__ = handle.__qualname__ = function
    return handle


async def expect_continue(request: web.Request) -> None:
    """Every route's ``Expect`` handler: "100 Continue" for ``100-continue`` (HTTP/1.1), as
    aiohttp's own does; any other value is left to the middleware, which refuses it as a
    400 in the route's error shape. (aiohttp's answers a plain-text 417 before any
    middleware, and a 500 when the value is not UTF-8: it cannot encode its own message.)"""
    if request.version >= (1, 1) and request.headers["Expect"].lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer's own size starts after it


def real_handler(handler: Any) -> Any:
    """The function behind a route handler, importing its module if need be."""
    resolve = getattr(handler, "resolve", None)
    return resolve() if resolve is not None else handler


def request_body(
    model: type[BaseModel], content_type: str = "application/json"
) -> Callable[[Any], Any]:
    """Mark a handler's request body schema (read by the OpenAPI generator)."""

    def mark(handler: Any) -> Any:
        handler.request_body = (model, content_type)
        return handler

    return mark


def errors_as(body: ErrorBody) -> Callable[[Any], Any]:
    """Mark a handler whose errors are answered in its protocol's shape (``body`` makes
    the JSON of an error); unmarked handlers answer in OpenAI's."""

    def mark(handler: Any) -> Any:
        handler.error_body = body
        return handler

    return mark


def error_body(handler: Any) -> ErrorBody | None:
    """The error shape a route's handler declared, or None (OpenAI's). Resolves a lazy
    handler (an error before the handler ran, e.g. a refused key, imports its module:
    the request would have anyway). Cached on the lazy handler: once per route."""
    try:
        return handler.resolved_error_body  # type: ignore[no-any-return]
    except AttributeError:
        pass
    found = getattr(real_handler(handler), "error_body", None)
    # Not on a bound method or builtin (aiohttp's own 404/405 handlers): looked up again.
    with contextlib.suppress(AttributeError):
        handler.resolved_error_body = found
    return found
