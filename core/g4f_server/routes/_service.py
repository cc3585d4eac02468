"""Shared by the image, audio and cookie routes: served-by headers and multipart uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from aiohttp import web

from g4f_server import errors
from g4f_server.keys import REQUEST_ID, SERVED_BY
from g4f_server.logs import get_logger
from g4f_server.router import Route

log = get_logger("g4f_server.service")
T = TypeVar("T")


def served_headers(request: web.Request, route: Route, attempts: int) -> dict[str, str]:
    request[SERVED_BY] = (route.entry.name, route.model, attempts)
    return {
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
