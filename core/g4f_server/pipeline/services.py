"""Shared by the image, audio, embeddings and cookie routes: calling a provider with
failover, and multipart uploads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.logs import get_logger
from g4f_server.pipeline.dispatch import first_success, served_headers
from g4f_server.pipeline.observers import OBSERVERS
from g4f_server.pipeline.scope import provider_key
from g4f_server.provider import ProviderContext
from g4f_server.providers.context import make_context
from g4f_server.providers.registry import REGISTRY
from g4f_server.providers.router import Route, resolve

log = get_logger("g4f_server.service")
T = TypeVar("T")


async def call_provider(
    request: web.Request,
    body: Any,
    *,
    capability: str,
    hook: str,
    check: Callable[[Route, Any], Awaitable[T]],
    needs: frozenset[str] = frozenset(),
) -> tuple[Route, dict[str, str], T]:
    """Resolve the providers for ``body`` (its ``model``, ``provider`` and ``api_key``),
    call ``hook`` on each until one succeeds, and return the served-by headers.

    ``check`` validates (and may complete) a provider's result inside the attempt, so a
    result that turns out unusable fails over to the next provider like an error does.
    ``needs``: what a model must support beyond ``capability`` (``token_input``).
    """
    app = request.app
    config = app[CONFIG]
    admitted = app[OBSERVERS].admitted
    if admitted is not None:  # keys, limits, demo mode (controls/)
        await admitted(request, body)
    routes = resolve(
        app[REGISTRY],
        config,
        capability=capability,
        model=body.model,
        provider=request.match_info.get("provider") or body.provider,
        needs=needs,
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


@dataclass(slots=True)
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes


async def read_multipart(
    request: web.Request, max_size: int
) -> tuple[dict[str, list[str]], list[Upload]]:
    """Form fields and files of a multipart body: at most ``max_size`` bytes in all, part
    headers included, at most ``max_multipart_parts`` parts, within ``body_timeout``
    (counted while reading, so an oversized upload is never held in memory)."""
    if not request.content_type.startswith("multipart/"):
        raise errors.InvalidRequestError(
            "Send the request as multipart/form-data", code="invalid_content_type"
        )
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        # Bodies are left as sent (web/body.py); uploads are compressed files already.
        raise errors.InvalidRequestError(
            "Content-Encoding is not supported on multipart uploads",
            code="unsupported_content_encoding",
        )
    if request.content_length is not None and request.content_length > max_size:
        raise _too_large(max_size)
    config = request.app[CONFIG]
    try:
        async with asyncio.timeout(config.body_timeout):
            return await _read_parts(request, max_size, config.max_multipart_parts)
    except TimeoutError:
        raise errors.RequestTimeoutError(
            f"The request body did not arrive within {config.body_timeout:g} s (body_timeout)"
        ) from None
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        # aiohttp's malformed-multipart errors (a header line over 8,190 bytes among them)
        reason = exc.message if isinstance(exc, HttpProcessingError) else exc
        raise errors.InvalidRequestError(f"Malformed multipart body: {reason}") from None


async def _read_parts(
    request: web.Request, max_size: int, max_parts: int
) -> tuple[dict[str, list[str]], list[Upload]]:
    fields: dict[str, list[str]] = {}
    files: list[Upload] = []
    total = count = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        count += 1
        if count > max_parts:
            raise errors.PayloadTooLargeError(
                f"Too many multipart parts (limit {max_parts}, max_multipart_parts)"
            )
        if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
            raise errors.InvalidRequestError("Nested or unnamed multipart parts are not allowed")
        # Headers count too: 50,000 empty parts were all header and no data.
        total += sum(len(k) + len(v) + 4 for k, v in part.headers.items())
        name, filename = _text(part.name, "name"), part.filename
        if filename is not None:
            filename = _text(filename, "filename")
        data = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            total += len(chunk)
            if total > max_size:
                raise _too_large(max_size)
            data += chunk
        if total > max_size:
            raise _too_large(max_size)
        if filename is not None:
            ctype = part.headers.get("Content-Type", "application/octet-stream")
            files.append(Upload(name, filename, ctype, bytes(data)))
        else:
            try:
                fields.setdefault(name, []).append(data.decode())
            except UnicodeDecodeError:
                raise errors.InvalidRequestError(
                    f"Form field '{name}' is not UTF-8 text", param=name
                ) from None
    return fields, files


def _text(value: str, what: str) -> str:
    """A part's name or filename, which must be UTF-8 (aiohttp keeps other bytes as
    surrogates, which no JSON answer or file system call can carry)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise errors.InvalidRequestError(
            f"A multipart {what} is not UTF-8 text", param=what, code="invalid_multipart"
        ) from None
    return value


def _too_large(limit: int) -> errors.PayloadTooLargeError:
    return errors.PayloadTooLargeError(f"Upload too large (limit {limit} bytes, max_upload_size)")
