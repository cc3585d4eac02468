"""Images (and video): one GET per picture, the prompt in the path, options in the query.

The image host answers every failure it can with a picture too (then it sets
``x-error-type``), and sometimes text with an image status; both are errors here, never
images handed to the client.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import yarl

from g4f_server.errors import (
    G4FError,
    InvalidRequestError,
    ProviderAuthError,
    ProviderError,
    ProviderPaymentError,
    ProviderRateLimitError,
)
from g4f_server.provider import MediaItem, ProviderContext
from g4f_server_pollinations import errors, transport
from g4f_server_pollinations.config import (
    DASHBOARD_URL,
    MAX_URL,
    api_key,
    auth_headers,
    settings,
)
from g4f_server_pollinations.models import cached_entry

if TYPE_CHECKING:
    from g4f_server.provider import ImageRequest

_SEED_MAX = 2**31 - 1
ASPECT_SIZES = {
    "1:1": (1024, 1024), "16:9": (1024, 576), "9:16": (576, 1024), "4:3": (1024, 768),
    "3:4": (768, 1024), "3:2": (1024, 682), "2:3": (682, 1024), "21:9": (1024, 440),
    "9:21": (440, 1024), "4:5": (832, 1040), "5:4": (1040, 832), "2:1": (1024, 512),
    "1:2": (512, 1024),
}  # fmt: skip
# Upstream switches a client may set as extra body fields, with our defaults. ``private``
# defaults to true: a gateway must not publish its users' prompts on the public feed.
FLAGS = {"nologo": True, "private": True, "enhance": False, "safe": False}


# Failures a second try cannot mend (ProviderAuthError and ProviderPaymentError are
# ProviderErrors, so they are named before the retry below catches those).
_NO_RETRY = (InvalidRequestError, ProviderAuthError, ProviderPaymentError)
# Models that get the aspect ratio in the prompt instead of width/height in the query.
_RATIO_IN_PROMPT = frozenset({"gptimage"})


def _bool(value: Any) -> str:
    if isinstance(value, str):
        return "true" if value.strip().lower() in ("1", "true", "yes", "on") else "false"
    return "true" if value else "false"


def _input_images(value: Any) -> str | None:
    if not value:
        return None
    urls = [value] if isinstance(value, str) else list(value)
    for url in urls:
        if not isinstance(url, str) or not re.match(r"https?://", url):
            raise InvalidRequestError(
                "Pollinations takes input images as http(s) URLs only", param="image"
            )
    return ",".join(urls)


def _ratio(request: ImageRequest) -> str | None:
    """The aspect ratio asked for: named, or that of the size (1024x1536 -> 2:3)."""
    extra = request.model_extra or {}
    if ratio := extra.get("aspect_ratio") or extra.get("aspectRatio"):
        return str(ratio)
    if size := request.dimensions:
        divisor = math.gcd(*size)
        return f"{size[0] // divisor}:{size[1] // divisor}"
    return None


def prompt_for(request: ImageRequest) -> str:
    """The prompt as sent: gptimage takes its shape from the text (2.4), not the query."""
    ratio = _ratio(request) if request.model in _RATIO_IN_PROMPT else None
    return f"{request.prompt.strip()} aspect-ratio: {ratio}" if ratio else request.prompt


def build_query(request: ImageRequest, ctx: ProviderContext) -> dict[str, str]:
    """Query parameters without the seed, in the upstream's documented order."""
    extra = request.model_extra or {}
    ratio = extra.get("aspect_ratio") or extra.get("aspectRatio")
    query: dict[str, str] = {}
    if request.model not in _RATIO_IN_PROMPT:
        width, height = request.dimensions or ASPECT_SIZES.get(str(ratio), (1024, 1024))
        width, height = int(extra.get("width") or width), int(extra.get("height") or height)
        query |= {"width": str(width), "height": str(height)}
    if request.model and request.model != "auto":
        query["model"] = request.model
    for flag, default in FLAGS.items():
        query[flag] = _bool(extra.get(flag, default))
    if extra.get("transparent") is not None:
        query["transparent"] = _bool(extra["transparent"])
    if images := _input_images(extra.get("image") or extra.get("images")):
        query["image"] = images
    if request.negative_prompt:
        query["negative_prompt"] = request.negative_prompt
    meta = cached_entry(ctx, "image", request.model) or {}
    if ratio and "video" in (meta.get("output_modalities") or ()):
        query["aspectRatio"] = str(ratio)
    return query


def _seeds(request: ImageRequest) -> list[int]:
    """One distinct seed per image: consecutive from the client's, else random."""
    if request.seed is not None:
        return [(request.seed + i) % (_SEED_MAX + 1) for i in range(request.n)]
    return random.sample(range(_SEED_MAX), request.n)


def build_url(base: str, prompt: str, query: dict[str, str]) -> str:
    """``base/<encoded prompt>?query``, the prompt shortened to keep the URL short."""
    tail = "?" + urlencode(query)
    room = MAX_URL - len(base) - len(tail)
    text = prompt.strip()
    encoded = quote(text, safe="")
    while len(encoded) > room and text:
        text = text[: max(0, min(len(text) - 1, int(len(text) * room / len(encoded))))]
        encoded = quote(text.rstrip(), safe="")
    return f"{base}{encoded}{tail}"


async def _one(ctx: ProviderContext, url: str, key: str | None, prompt: str) -> MediaItem:
    async with transport.call(
        ctx, "GET", yarl.URL(url, encoded=True), keyed=key is not None, what="image",
        headers=auth_headers(key),
    ) as resp:  # fmt: skip
        kind = resp.content_type
        if error_type := resp.headers.get("x-error-type"):
            raise ProviderError(
                f"Pollinations could not make the image ({error_type})", code="upstream_error_image"
            )
        if kind.startswith(("image/", "video/")):
            return MediaItem(data=await resp.read(), mime_type=kind, revised_prompt=prompt)
        body = await resp.content.read(64 * 1024)
    text = body.decode("utf-8", "replace")
    if DASHBOARD_URL.split("//")[1] in text:
        raise ProviderAuthError(
            f"Pollinations wants a key for this image request: {errors.message_of(body)}"
        )
    raise ProviderError(
        f"Pollinations answered {kind or 'no content type'} instead of an image: "
        f"{errors.message_of(body)}"
    )


async def generate_images(request: ImageRequest, ctx: ProviderContext) -> list[MediaItem]:
    cfg = settings()
    key = api_key(ctx, cfg)
    keyed = key is not None
    deadline = transport.Deadline(ctx)
    base = f"{cfg.gen_url}/image/" if key else f"{cfg.image_url}/prompt/"
    query = build_query(request, ctx)
    prompt = prompt_for(request)

    async def fetch(url: str) -> MediaItem:
        async with transport.anonymous_slot(ctx, cfg, "image", keyed=keyed, deadline=deadline):
            return await _one(ctx, url, key, request.prompt)

    async def one(seed: int) -> MediaItem:
        url = build_url(base, prompt, {**query, "seed": str(seed)})
        try:
            return await fetch(url)
        except _NO_RETRY:
            raise  # the request or the credentials: a second try gets the same answer
        except ProviderRateLimitError as exc:
            # Not before the upstream said; when that is past the call's budget, the
            # client gets the 429 and its Retry-After instead of a retry that cannot be.
            wait = cfg.anon_image_interval if exc.retry_after is None else exc.retry_after
            if wait > deadline.room():
                raise
            ctx.log.info("pollinations_image_retry", error=exc.code, wait=wait)
            if keyed:
                await asyncio.sleep(wait)
            else:  # the host limits the IP: every anonymous image call waits (the slot)
                transport.hold_off(ctx, "image", wait)
        except ProviderError as exc:
            if deadline.room() <= 0:
                raise  # no time left for a second try: this failure is the answer
            ctx.log.info("pollinations_image_retry", error=exc.code)
        return await fetch(url)  # once more (spaced like any anonymous call)

    results = await asyncio.gather(*(one(s) for s in _seeds(request)), return_exceptions=True)
    items = [r for r in results if isinstance(r, MediaItem)]
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        if not isinstance(failure, G4FError):
            raise failure  # a bug or a cancellation, not an upstream failure
    if not failures:
        return items
    raise _failed(request.n, len(items), failures)  # type: ignore[arg-type]


def _weight(error: G4FError) -> int:
    """Which failure speaks for the call: the request's own fault first, then what the
    client must change (key, Pollen), then a rate limit (the client should wait), then
    the rest."""
    if not isinstance(error, ProviderError):
        return 0
    if isinstance(error, _NO_RETRY):
        return 1
    if isinstance(error, ProviderRateLimitError):
        return 2
    return 3


def _failed(asked: int, made: int, failures: list[G4FError]) -> G4FError:
    worst = min(failures, key=_weight)
    if not made or _weight(worst) == 0:
        return worst
    # Fewer images than asked is no success: the client would not know one is missing.
    # The reason stays what it was: a 429 is still a 429 (with its Retry-After), a
    # missing key or Pollen still says so; any other failure is an upstream 502.
    message = f"Pollinations made {made} of {asked} images, even after a retry: {worst.message}"
    if isinstance(worst, ProviderRateLimitError):
        return ProviderRateLimitError(message, code=worst.code, retry_after=worst.retry_after)
    if isinstance(worst, ProviderAuthError | ProviderPaymentError):
        return type(worst)(message, code=worst.code)
    return ProviderError(message, code="upstream_partial_images")
