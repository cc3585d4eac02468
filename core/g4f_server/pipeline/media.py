"""Turning media a provider produced into something a client can fetch.

``MediaPublisher`` is the seam for the media store. ``StoredMediaPublisher`` (the app's
default) saves bytes in the data folder and returns an absolute ``/media/...`` URL.
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol

import aiohttp
from aiohttp import web

from g4f_server import errors
from g4f_server.events import Media
from g4f_server.storage.media import MediaStore, StoredFile


class MediaPublisher(Protocol):
    async def publish(self, media: Media, request: web.Request) -> Media: ...


class StoredMediaPublisher:
    """Stores a provider's bytes and answers with the absolute URL they are served at."""

    def __init__(self, store: MediaStore, public_url: str | None = None) -> None:
        self.store = store
        self.public_url = public_url

    async def publish(self, media: Media, request: web.Request) -> Media:
        if media.url or media.data is None:
            return media
        stored = await self.store.save(media.data, media.mime_type)
        return Media(
            media.kind,
            url=media_url(request, stored, self.public_url),
            mime_type=stored.mime_type,
            alt=media.alt,
            thumbnail_url=media.thumbnail_url,
        )


# Forwarded headers only shape the URL handed back to the same client, but they are
# still checked so a header cannot inject markup or a second URL into a response.
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def _first(value: str | None) -> str:
    return (value or "").split(",", 1)[0].strip()


def public_base_url(request: web.Request, configured: str | None = None) -> str:
    """The server's external base URL: ``public_url`` when configured, else the request's
    ``Host`` corrected by ``X-Forwarded-Proto``/``-Host``/``-Prefix`` (nginx, Caddy)."""
    if configured:
        return configured.rstrip("/")
    proto = _first(request.headers.get("X-Forwarded-Proto")).lower()
    scheme = proto if proto in ("http", "https") else request.scheme
    forwarded_host = _first(request.headers.get("X-Forwarded-Host"))
    host = forwarded_host if _HOST.match(forwarded_host) else request.host
    if not _HOST.match(host):
        host = "localhost"
    prefix = _first(request.headers.get("X-Forwarded-Prefix")).rstrip("/")
    prefix = prefix if _PREFIX.match(prefix) else ""
    return f"{scheme}://{host}{prefix}"


def media_url(request: web.Request, stored: StoredFile, public_url: str | None = None) -> str:
    return f"{public_base_url(request, public_url)}/media/{stored.name}"


async def fetch_media(
    http: aiohttp.ClientSession,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    max_size: int,
    timeout: float,
    proxy: str | None = None,
    kinds: tuple[str, ...] = ("image/",),
) -> tuple[bytes, str | None]:
    """Download a provider's media URL (bounded in size and time) -> (bytes, content type).

    Anything but a 200 with a media content type is the provider's failure
    (``ProviderError``), so the router can try the next provider.
    """
    if not url.startswith(("http://", "https://")):
        raise errors.ProviderError("The provider returned a media URL that is not http(s)")
    try:
        async with asyncio.timeout(timeout):
            async with http.get(
                url, headers=headers or {}, proxy=proxy, allow_redirects=True
            ) as resp:
                if resp.status != 200:
                    raise errors.ProviderError(
                        f"Downloading the generated media failed with HTTP {resp.status}"
                    )
                ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
                # Text (an HTML error page, JSON) is never media; anything else is
                # judged by its bytes afterwards (hosts label files loosely).
                if ctype.startswith(_TEXT_TYPES) and not ctype.startswith(kinds):
                    raise errors.ProviderError(
                        f"The provider's media URL returned {ctype}, not media"
                    )
                if resp.content_length is not None and resp.content_length > max_size:
                    raise errors.ProviderError(f"Media larger than {max_size} bytes")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > max_size:
                        raise errors.ProviderError(f"Media larger than {max_size} bytes")
                return bytes(data), ctype or None
    except TimeoutError:
        raise errors.ProviderTimeoutError(
            f"Downloading the generated media took longer than {timeout:g}s"
        ) from None
    except aiohttp.ClientError as exc:
        raise errors.ProviderError(f"Downloading the generated media failed: {exc}") from None


MEDIA: web.AppKey[MediaPublisher] = web.AppKey("media")
