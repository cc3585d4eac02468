"""Shared by the image, audio and cookie routes: calling a provider with failover, and
multipart uploads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from g4f_server import controls, errors
from g4f_server.context import make_context, provider_key
from g4f_server.dispatch import first_success
from g4f_server.keys import CONFIG, REGISTRY, REQUEST_ID, SERVED_BY
from g4f_server.logs import get_logger
from g4f_server.provider import ProviderContext
from g4f_server.router import Route, resolve

log = get_logger("g4f_server.service")
T = TypeVar("T")


async def call_provider(
    request: web.Request,
    body: Any,
    *,
    capability: str,
    hook: str,
    check: Callable[[Route, Any], Awaitable[T]],
) -> tuple[Route, dict[str, str], T]:
    """Resolve the providers for ``body`` (its ``model``, ``provider`` and ``api_key``),
    call ``hook`` on each until one succeeds, and return the served-by headers.

    ``check`` validates (and may complete) a provider's result inside the attempt, so a
    result that turns out unusable fails over to the next provider like an error does.
    """
    app = request.app
    config = app[CONFIG]
    await controls.admit_model(request, body.model or "")
    routes = resolve(
        app[REGISTRY],
        config,
        capability=capability,
        model=body.model,
        provider=request.match_info.get("provider") or body.provider,
    )
    key = provider_key(request, body.api_key)
    made: list[ProviderContext] = []  # attempts run in turn: the last one is the winner's

    async def attempt(route: Route) -> T:
        ctx = make_context(app, route.entry, request, api_key=key)
        made.append(ctx)
        result = await route.entry.call(
            hook, request=body.model_copy(update={"model": route.model}), ctx=ctx
        )
        return await check(route, result)

    route, attempts, result = await first_success(routes, attempt, timeout=config.timeout)
    return route, served_headers(request, route, attempts, made[-1]), result


_OWN_HEADERS = ("x-g4f-", "x-request-id")


def served_headers(
    request: web.Request, route: Route, attempts: int, ctx: ProviderContext | None = None
) -> dict[str, str]:
    """Who served the request, after the ``x-`` headers the provider passed on (ctx)."""
    request[SERVED_BY] = (route.entry.name, route.model, attempts)
    passed = {}
    for name, value in (ctx.response_headers if ctx else {}).items():
        low = name.lower()
        if low.startswith("x-") and not low.startswith(_OWN_HEADERS) and value.isprintable():
            passed[name] = value
    return {
        **passed,
        "X-G4F-Provider": route.entry.name,
        "X-G4F-Attempts": str(attempts),
        "X-Request-Id": request[REQUEST_ID],
    }


@dataclass(slots=True)
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes


async def read_multipart(
    request: web.Request, max_size: int
) -> tuple[dict[str, list[str]], list[Upload]]:
    """Form fields and files of a multipart body, at most ``max_size`` bytes in all
    (counted while reading, so an oversized upload is never held in memory)."""
    if not request.content_type.startswith("multipart/"):
        raise errors.InvalidRequestError(
            "Send the request as multipart/form-data", code="invalid_content_type"
        )
    if request.content_length is not None and request.content_length > max_size:
        raise _too_large(max_size)
    fields: dict[str, list[str]] = {}
    files: list[Upload] = []
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                raise errors.InvalidRequestError(
                    "Nested or unnamed multipart parts are not allowed"
                )
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                total += len(chunk)
                if total > max_size:
                    raise _too_large(max_size)
                data += chunk
            if part.filename is not None:
                ctype = part.headers.get("Content-Type", "application/octet-stream")
                files.append(Upload(part.name, part.filename, ctype, bytes(data)))
            else:
                try:
                    fields.setdefault(part.name, []).append(data.decode())
                except UnicodeDecodeError:
                    raise errors.InvalidRequestError(
                        f"Form field '{part.name}' is not UTF-8 text", param=part.name
                    ) from None
    except (ValueError, AssertionError) as exc:  # aiohttp's malformed-multipart errors
        raise errors.InvalidRequestError(f"Malformed multipart body: {exc}") from None
    return fields, files


def _too_large(limit: int) -> errors.PayloadTooLargeError:
    return errors.PayloadTooLargeError(f"Upload too large (limit {limit} bytes)")
