"""POST /v1/images/generations and /api/{provider}/images/generations."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG, HTTP
from g4f_server.mediatypes import sniff
from g4f_server.pipeline.media import fetch_media, media_url
from g4f_server.pipeline.services import call_provider
from g4f_server.provider import MediaItem
from g4f_server.providers.router import Route
from g4f_server.requests import ImageRequest
from g4f_server.storage.interfaces import MEDIA_STORE
from g4f_server.web.body import read_model
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response

_VISUAL = ("image/", "video/")


@dataclass(slots=True)
class Image:
    data: bytes
    mime_type: str
    revised_prompt: str | None


@request_body(ImageRequest)
async def generate_images(request: web.Request) -> web.Response:
    """Generate images from a prompt (OpenAI-compatible; `url` or `b64_json`)."""
    app = request.app
    config = app[CONFIG]
    body = await read_model(request, ImageRequest)

    async def check(route: Route, items: Any) -> list[Image]:
        if not isinstance(items, list) or not items:
            raise errors.ProviderError(f"Provider '{route.entry.name}' returned no images")
        # Downloads belong to the attempt: an unreachable image is that provider's failure.
        return [await _materialize(app, item) for item in items[: body.n]]

    route, headers, images = await call_provider(
        request, body, capability="image", hook="generate_images", check=check
    )
    data: list[dict[str, Any]] = []
    for image in images:
        item: dict[str, Any]
        if body.response_format == "b64_json":
            item = {"b64_json": base64.b64encode(image.data).decode()}
        else:
            stored = await app[MEDIA_STORE].save(image.data, image.mime_type)
            item = {"url": media_url(request, stored, config.public_url)}
        item["revised_prompt"] = image.revised_prompt or body.prompt
        data.append(item)
    return json_response(
        {
            "created": int(time.time()),
            "data": data,
            "model": route.model,
            "provider": route.entry.name,
        },
        headers=headers,
    )


async def _materialize(app: web.Application, item: MediaItem) -> Image:
    """The bytes of one generated image: given, inlined as a data URI, or downloaded."""
    config = app[CONFIG]
    if not isinstance(item, MediaItem):
        raise errors.ProviderError("The provider returned something that is not a MediaItem")
    data, hint = item.data, item.mime_type
    if data is None and item.url and item.url.startswith("data:"):
        data, hint = _data_uri(item.url)
    elif data is None and item.url:
        data, hint = await fetch_media(
            app[HTTP],
            item.url,
            headers=dict(item.fetch_headers),
            max_size=config.media_max_file_size,
            timeout=config.timeout,
            proxy=config.proxy,
            kinds=_VISUAL,
        )
    if not data:
        raise errors.ProviderError("The provider returned an image without data or URL")
    sniffed = sniff(data)
    if sniffed is None or not sniffed[0].startswith(_VISUAL):
        raise errors.ProviderError(f"The provider returned something that is not an image ({hint})")
    return Image(data, sniffed[0], item.revised_prompt)


def _data_uri(url: str) -> tuple[bytes, str | None]:
    head, _, payload = url.partition(",")
    if not head.endswith(";base64"):
        raise errors.ProviderError("The provider returned a data URI that is not base64")
    try:
        return base64.b64decode(payload, validate=True), head[5:-7] or None
    except (binascii.Error, ValueError):
        raise errors.ProviderError("The provider returned a malformed data URI") from None
