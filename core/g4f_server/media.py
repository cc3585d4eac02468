"""Turning media a provider produced into something a client can fetch.

``MediaPublisher`` is the seam for the media store: the default inlines bytes as a
data URI; the stored-media implementation saves them and returns a /media URL.
"""

from __future__ import annotations

import base64
from typing import Protocol

from aiohttp import web

from g4f_server.events import Media


class MediaPublisher(Protocol):
    async def publish(self, media: Media, request: web.Request) -> Media: ...


class InlineMediaPublisher:
    async def publish(self, media: Media, request: web.Request) -> Media:
        if media.url or media.data is None:
            return media
        mime = media.mime_type or "application/octet-stream"
        url = f"data:{mime};base64,{base64.b64encode(media.data).decode()}"
        return Media(media.kind, url=url, mime_type=mime, alt=media.alt)
