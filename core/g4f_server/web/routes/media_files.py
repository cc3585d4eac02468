"""GET /media/{filename}: files the server generated (images, audio), nothing else."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG, MEDIA_STORE
from g4f_server.mediatypes import MIME_BY_EXT
from g4f_server.storage.media import MediaStore


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
    if not isinstance(store, MediaStore):  # shared state (Redis): the bytes, not a file
        return await _from_bytes(request, store, name, headers)
    # Only names matching the store's own pattern reach the file system: no "..",
    # no separators (encoded or not), no absolute paths, no listing.
    path = store.path(name)
    if path is None:
        raise errors.NotFoundError("File not found", code="media_not_found")
    # FileResponse answers If-None-Match / If-Modified-Since (304) and Range requests.
    return web.FileResponse(path, headers=headers)


async def _from_bytes(
    request: web.Request, store: Any, name: str, headers: dict[str, str]
) -> web.Response:
    data = await store.load(name)  # checks the name as strictly as MediaStore.path
    if data is None:
        raise errors.NotFoundError("File not found", code="media_not_found")
    headers["ETag"] = etag = f'"{name}"'  # names are never reused: the name is the version
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers=headers)
