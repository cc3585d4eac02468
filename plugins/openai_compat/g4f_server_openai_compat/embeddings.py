"""Embeddings against an OpenAI-compatible upstream: ``POST {base_url}/embeddings``.

The request goes out as the client sent it (``input``, ``dimensions``, ``user``, unknown
extra fields such as NVIDIA's ``input_type``) minus the gateway's fields and the fields
the preset refuses, with floats asked for: the gateway encodes base64 for its client
itself, and a float answer needs no decoding here. An upstream that answers base64
anyway is decoded. Errors are mapped as chat's are (``failures.py``): a refused key is
remembered, a 429 cools the upstream down, a 5xx or timeout fails over, a 400 is the
client's.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from g4f_server.errors import ProviderError
from g4f_server.provider import Embeddings, ProviderContext
from g4f_server_openai_compat import failures
from g4f_server_openai_compat.chat import GATEWAY_FIELDS
from g4f_server_openai_compat.models import auth_headers
from g4f_server_openai_compat.upstreams import Upstream

if TYPE_CHECKING:
    from g4f_server.requests import EmbeddingRequest

# The largest answer read: 2,048 inputs of 4,096 dimensions as JSON numbers are ~170 MB.
MAX_ANSWER = 256 * 1024 * 1024
_ERROR_BODY_LIMIT = 64 * 1024
_OURS = GATEWAY_FIELDS | {"input", "encoding_format"}


def request_body(up: Upstream, request: EmbeddingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "input": request.input}
    fields = request.model_dump(mode="json", exclude_none=True, exclude=_OURS)
    for name, value in fields.items():
        if name not in up.preset.refused:
            body[name] = value
    for old, new in up.preset.renamed:
        if old in body:
            body.setdefault(new, body.pop(old))
    body["encoding_format"] = "float"
    return body


async def embed(up: Upstream, request: EmbeddingRequest, ctx: ProviderContext) -> Embeddings:
    key = ctx.api_key or up.api_key  # the client's own key wins over the configured one
    failures.check_memory(ctx.state, up, key)
    headers = {**auth_headers(up, key), "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=ctx.timeout, sock_connect=min(30.0, ctx.timeout))
    try:
        async with ctx.http.post(
            f"{up.base_url}/embeddings",
            data=orjson.dumps(request_body(up, request)),
            headers=headers,
            proxy=ctx.proxy,
            timeout=timeout,
        ) as resp:
            if resp.status >= 300:
                body = await resp.content.read(_ERROR_BODY_LIMIT)
                ctx.log.info("openai_compat_upstream_error", status=resp.status)
                raise failures.for_status(ctx.state, up, key, resp.status, body, resp.headers)
            raw = await _read_all(up, resp)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise failures.for_exception(up, exc, "embeddings") from exc
    return parse(up, bytes(raw))


async def _read_all(up: Upstream, resp: aiohttp.ClientResponse) -> bytearray:
    """The whole answer, at most MAX_ANSWER bytes (``content.read(n)`` returns what has
    arrived so far, not n bytes: a big answer comes in many reads)."""
    raw = bytearray()
    async for piece in resp.content.iter_any():
        raw += piece
        if len(raw) > MAX_ANSWER:
            raise ProviderError(f"{up.provider}'s embeddings answer is over {MAX_ANSWER} bytes")
    return raw


def parse(up: Upstream, raw: bytes) -> Embeddings:
    """An OpenAI ``list`` of ``embedding`` objects -> Embeddings, in input order."""
    try:
        answer: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderError(f"{up.provider} answered embeddings that are not JSON") from None
    items = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        # Some servers answer 200 with an error object.
        detail = failures.message_of(raw) if isinstance(answer, dict) else "no 'data' list"
        raise ProviderError(f"{up.provider} answered no embeddings: {detail}")
    try:
        ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
        vectors = [_vector(item["embedding"]) for item in ordered]
    except (AttributeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ProviderError(
            f"{up.provider} answered malformed embeddings: {type(exc).__name__}"
        ) from None
    usage = answer.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    model = answer.get("model")
    return Embeddings(
        vectors,
        model=model if isinstance(model, str) and model else None,
        prompt_tokens=tokens if type(tokens) is int and tokens >= 0 else None,
    )


def _vector(value: Any) -> Any:
    if isinstance(value, list):
        return value  # numbers are checked by the kernel, in one C pass
    if isinstance(value, str):  # base64 float32, little-endian (asked for floats, got these)
        packed = array("f", base64.b64decode(value, validate=True))
        if sys.byteorder == "big":
            packed.byteswap()
        return packed.tolist()
    raise TypeError(f"an embedding is a {type(value).__name__}")
