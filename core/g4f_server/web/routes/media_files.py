"""GET /media/{filename}: files the server generated (images, audio), nothing else."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.mediatypes import MIME_BY_EXT
from g4f_server.storage.interfaces import MEDIA_STORE


async def get_media(request: web.Request) -> web.StreamResponse:
    """Serve a generated media file (ETag, long-lived caching, exact content type)."""
    name = request.match_info["filename"]
    store = request.app[MEDIA_STORE]
    max_age = int(request.app[CONFIG].media_max_age)
    headers = {
        "Content-Type": MIME_BY_EXT.get(name.rsplit(".", 1)[-1], "application/octet-stream"),
        # A name is never reused for other bytes, so caches may keep it as long as
        # the store does.
        "Cache-Control": f"public, max-age={max_age}, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    # Only names matching the store's own pattern get an answer: no "..", no separators
    # (encoded or not), no absolute paths, no listing.
    found = await store.fetch(name)
    if found is None:
        raise errors.NotFoundError("File not found", code="media_not_found")
    if isinstance(found, Path):  # a file (the data folder)
        # FileResponse answers If-None-Match / If-Modified-Since (304) and Range requests.
        return web.FileResponse(found, headers=headers)
    return _from_bytes(request, found, name, headers)  # the bytes (shared state, Redis)


def _from_bytes(
    request: web.Request, data: bytes, name: str, headers: dict[str, str]
) -> web.Response:
    headers["ETag"] = etag = f'"{name}"'  # names are never reused: the name is the version
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers=headers)
