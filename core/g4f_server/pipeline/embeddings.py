"""One embeddings call, wire-independent: the providers that embed the request's model,
tried in turn until one returns usable vectors, and the usage counted.

A provider's vectors are checked inside its attempt (one per input, all of one length,
``dimensions`` long when asked for, finite numbers): an answer that fails the check is
that provider's failure, so the next provider serving the model is tried, and an empty
answer is never a success. Encoding (floats or base64) is the protocol's business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from g4f_server import errors
from g4f_server.pipeline.services import call_provider
from g4f_server.pipeline.transcript import estimate_tokens
from g4f_server.provider import Embeddings
from g4f_server.providers.registry import REGISTRY
from g4f_server.providers.router import Route

if TYPE_CHECKING:
    from g4f_server.requests import EmbeddingRequest


@dataclass(slots=True)
class Embedded:
    """The vectors of one request, and who made them."""

    vectors: Sequence[Sequence[float]]
    model: str  # the model that answered (the provider's name for it)
    provider: str
    prompt_tokens: int
    estimated: bool  # prompt_tokens is the kernel's estimate, not the upstream's count
    headers: dict[str, str]


async def embed(request: web.Request, body: EmbeddingRequest) -> Embedded:
    """Embed ``body.inputs`` with the first provider of its model that answers."""
    named = request.match_info.get("provider") or body.provider
    if not named and not request.app[REGISTRY].with_capability("embeddings"):
        # Said plainly: the router would name the model as missing, and the client would
        # go looking for a typo in it. (A provider named is told it does not embed.)
        raise errors.ModelNotFoundError(
            "No installed provider serves embeddings: turn on an upstream that offers them "
            "(docs/upstreams.md, e.g. --upstreams mistral or ollama)",
            param="model",
            code="no_embeddings_provider",
        )
    count = len(body.inputs)

    async def check(route: Route, result: Any) -> Embeddings:
        return checked(route, result, count, body.dimensions)

    route, headers, result = await call_provider(
        request,
        body,
        capability="embeddings",
        hook="embed",
        check=check,
        needs=body.needed_capabilities(),
    )
    tokens, estimated = result.prompt_tokens, False
    if tokens is None:
        tokens, estimated = estimate_input_tokens(body), not body.tokens
    return Embedded(
        vectors=result.vectors,
        model=result.model or route.model,
        provider=route.entry.name,
        prompt_tokens=tokens,
        estimated=estimated,
        headers=headers,
    )


def checked(route: Route, result: Any, count: int, dimensions: int | None) -> Embeddings:
    """``result`` if it is usable, else a ``ProviderError`` naming what is wrong."""
    name = route.entry.name
    if not isinstance(result, Embeddings):
        raise errors.ProviderError(f"Provider '{name}' returned something that is not Embeddings")
    vectors = result.vectors
    if not vectors:
        raise errors.ProviderError(f"Provider '{name}' returned no embeddings")
    if len(vectors) != count:
        raise errors.ProviderError(
            f"Provider '{name}' returned {len(vectors)} embeddings for {count} inputs"
        )
    size = len(vectors[0])
    if size == 0:
        raise errors.ProviderError(f"Provider '{name}' returned an empty vector")
    if dimensions is not None and size != dimensions:
        raise errors.ProviderError(
            f"Provider '{name}' returned {size} dimensions where {dimensions} were asked for "
            "(its model may not take 'dimensions')"
        )
    for i, vector in enumerate(vectors):
        if len(vector) != size:
            raise errors.ProviderError(
                f"Provider '{name}' returned vectors of different lengths ({size} and "
                f"{len(vector)}, input {i})"
            )
        # One sum in C per vector (~5 ns a number) instead of a check per number: a NaN
        # or an infinity makes the sum one (embedding values are near [-1, 1], so finite
        # numbers never add up to infinity), and a string raises.
        try:
            total = sum(vector)
        except TypeError:
            raise errors.ProviderError(
                f"Provider '{name}' returned a vector with something that is not a number"
            ) from None
        if not math.isfinite(total):
            raise errors.ProviderError(
                f"Provider '{name}' returned a vector with NaN or infinite numbers"
            )
    return result


def estimate_input_tokens(body: EmbeddingRequest) -> int:
    """Token ids count themselves; texts are estimated as chat text is (UTF-8 bytes / 4)."""
    if body.tokens:
        return sum(len(ids) for ids in body.inputs)  # type: ignore[misc]
    return sum(estimate_tokens(text) for text in body.inputs)  # type: ignore[arg-type]
