"""GET /media/{filename}: files the server generated (images, audio), nothing else."""

from __future__ import annotations

from aiohttp import web

from g4f_server import errors
from g4f_server.keys import CONFIG, MEDIA_STORE
from g4f_server.storage.files import MIME_BY_EXT


async def get_media(request: web.Request) -> web.StreamResponse:
    """Serve a generated media file (ETag, long-lived caching, exact content type)."""
    name = request.match_info["filename"]
    # Only names matching the store's own pattern reach the file system: no "..",
    # no separators (encoded or not), no absolute paths, no listing.
    path = request.app[MEDIA_STORE].path(name)
    if path is None:
        raise errors.NotFoundError("File not found", code="media_not_found")
    max_age = int(request.app[CONFIG].media_max_age)
    # FileResponse answers If-None-Match / If-Modified-Since (304) and Range requests.
    return web.FileResponse(
        path,
        headers={
            "Content-Type": MIME_BY_EXT[name.rsplit(".", 1)[1]],
            # A name is never reused for other bytes, so caches may keep it as long as
            # the store does.
            "Cache-Control": f"public, max-age={max_age}, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
