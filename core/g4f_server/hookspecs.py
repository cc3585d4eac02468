"""The plugin contract: every hook a provider plugin may implement.

A provider is one plugin object (usually a module) registered under the entry point
group ``g4f_server``. It must implement ``provider_info``; everything else is optional,
and what it implements is what it can do: a plugin without ``generate_images`` is never
asked for images.

pluggy's rules apply: an implementation may accept fewer arguments than the spec lists
(that is how hooks grow without breaking plugins). The kernel never dispatches the async
hooks through ``pm.hook``: it picks one provider from its registry and calls that
provider's implementation alone (see ``registry.py``).

Every hook is documented in docs/plugins.md; tests/contract/test_docs.py fails when one is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from g4f_server.capabilities import SERVICE_HOOKS

__all__ = ["HOOK_API_VERSION", "PROJECT", "SERVICE_HOOKS", "hookimpl", "hookspec"]

if TYPE_CHECKING:
    from g4f_server.events import ChatItem
    from g4f_server.provider import (
        Embeddings,
        MediaItem,
        ModelInfo,
        ProviderContext,
        ProviderInfo,
        SpeechResult,
        Transcription,
    )
    from g4f_server.requests import (
        ChatRequest,
        EmbeddingRequest,
        ImageRequest,
        SpeechRequest,
        TranscriptionRequest,
    )

PROJECT = "g4f_server"
# Bumped when a hook changes incompatibly; plugins may check it at import time.
HOOK_API_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def provider_info() -> ProviderInfo:
    """Describe the provider: name, label, url, auth it needs, priority. Required."""


@hookspec
def providers(settings: Mapping[str, Any]) -> list[object]:
    """Register more providers: one plugin object per upstream the operator turned on
    (each implementing ``provider_info`` and the hooks it serves, marked with
    ``hookimpl``). Called once at start-up with the server's settings (read-only, its own
    secrets left out; e.g. ``settings["upstreams"]``). A plugin that implements this
    needs no ``provider_info`` of its own. Raise ``ValueError`` with a message naming
    the setting for a configuration the server must not start with (an upstream turned
    on without its key): the server then stops with that message."""


@hookspec
def auth_status(ctx: ProviderContext) -> dict[str, Any]:
    """Report the provider's login state for /v1/providers/{provider} (``logged_in`` and
    a human ``detail``). Must not do network I/O; never include secret values."""


@hookspec
async def probe(ctx: ProviderContext) -> None:
    """Check, as cheaply as the upstream allows, that the provider answers right now:
    return when it does, raise a ``g4f_server.errors`` exception when it does not.

    Called by ``g4f-server providers --check`` and, with ``--probe-interval``, every
    interval (never two at once for one provider). Without it the kernel sends a
    one-token chat to the provider's default chat model. Spend as little of a free
    quota as possible; a model-list call that needs no login proves little.
    """


@hookspec
async def list_models(ctx: ProviderContext) -> list[ModelInfo]:
    """Return the models this provider serves, with aliases and capabilities.

    Called at start-up (bounded by a timeout) and again when the model cache expires.
    Must not block for long: return a built-in list when the upstream is unreachable.
    """


@hookspec
def chat(request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[ChatItem]:
    """Answer a chat request as an async iterator of events (see ``g4f_server.events``).

    Each item is one event, or a list of the events that arrived together (one upstream
    read): the gateway sends each item to the client in one write, so a provider that
    parses several events per read should yield them as a list.

    ``request.model`` is already resolved to this provider's own model id. Raise a
    ``g4f_server.errors`` exception before the first event to let the router try the
    next provider; an exception after it ends the stream with an error.
    """


@hookspec
async def generate_images(request: ImageRequest, ctx: ProviderContext) -> list[MediaItem]:
    """Generate ``request.n`` images; return them as URLs or bytes."""


@hookspec
async def create_speech(request: SpeechRequest, ctx: ProviderContext) -> SpeechResult:
    """Turn text into audio."""


@hookspec
async def transcribe(request: TranscriptionRequest, ctx: ProviderContext) -> Transcription:
    """Turn audio into text."""


@hookspec
async def embed(request: EmbeddingRequest, ctx: ProviderContext) -> Embeddings:
    """Turn ``request.inputs`` into one vector of floats each, in order.

    ``request.model`` is already this provider's own model id. The inputs are texts, or
    token ids (``request.tokens``) only for a model that declares ``token_input``.
    Honour ``request.dimensions`` or raise ``InvalidRequestError`` when the model cannot.
    Return floats whatever ``encoding_format`` says: the kernel encodes base64 itself,
    checks the vectors (one per input, all of one length, finite numbers) and estimates
    the usage when ``prompt_tokens`` is None."""
