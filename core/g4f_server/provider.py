"""Types a provider plugin works with: its description, its models, and its context."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from g4f_server.capabilities import CAPABILITIES

if TYPE_CHECKING:
    import aiohttp
    import structlog

    from g4f_server.requests import (
        ChatRequest,
        EmbeddingRequest,
        ImageRequest,
        SpeechRequest,
        TranscriptionRequest,
    )

__all__ = [
    "CAPABILITIES",
    "ChatRequest",
    "EmbeddingRequest",
    "Embeddings",
    "FallbackModels",
    "ImageRequest",
    "MediaItem",
    "ModelInfo",
    "ProviderContext",
    "ProviderInfo",
    "SpeechRequest",
    "SpeechResult",
    "Transcription",
    "TranscriptionRequest",
]

# The request models are pydantic classes, re-exported here for provider authors and
# imported on first access (PEP 562): a plugin that names them only in annotations keeps
# pydantic (~8 MB, ~0.1 s) out of the idle server.
_REQUEST_MODELS = {
    "ChatRequest": "g4f_server.requests",
    "EmbeddingRequest": "g4f_server.requests",
    "ImageRequest": "g4f_server.requests",
    "SpeechRequest": "g4f_server.requests",
    "TranscriptionRequest": "g4f_server.requests",
}


def __getattr__(name: str) -> Any:
    module = _REQUEST_MODELS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


@dataclass(slots=True, frozen=True)
class ProviderInfo:
    """What ``provider_info`` returns."""

    name: str  # unique, used in URLs and the "provider" field, e.g. "Copilot"
    label: str = ""  # human name, e.g. "Microsoft Copilot"
    url: str = ""  # the upstream's home page
    auth: Literal["none", "optional", "required"] = "none"
    auth_hint: str = ""  # how a user logs in (env var, cookie upload), shown in /v1/providers
    description: str = ""
    priority: int = 100  # lower is tried first when several providers serve a model
    default_model: str | None = None
    default_image_model: str | None = None
    default_speech_model: str | None = None
    default_transcription_model: str | None = None
    default_embedding_model: str | None = None
    cookie_domains: tuple[str, ...] = ()  # domains whose uploaded cookies it reads
    aliases: tuple[str, ...] = ()  # other names it answers to, e.g. "PollinationsAI"
    # Serve the built-in table's public names (gpt-4o, claude-*, dall-e-3, whisper-1...)
    # when a client asks for one: a third-party provider is a failover target for them
    # only when it opts in (the built-in plugins do). An operator's [models] table and a
    # provider's own model ids and aliases are not affected.
    public_names: bool = False


@dataclass(slots=True, frozen=True)
class ModelInfo:
    """One model a provider serves."""

    id: str
    capabilities: frozenset[str] = frozenset({"chat"})
    aliases: tuple[str, ...] = ()
    owned_by: str = ""
    description: str = ""
    # Provider-specific metadata (voices, pricing, tier...), shown by /api/{p}/models.
    # ``{"free": True}`` (the model costs nothing) is also shown by /v1/models.
    extra: Mapping[str, Any] = field(default_factory=dict)
    # A voice of the speech model with this id, listed so that a voice name sent as the
    # model routes here (some upstreams take it that way): routed as a model, but shown
    # as one of that model's ``voices`` by /v1/models, never as a model of its own.
    voice_of: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - CAPABILITIES
        if unknown:
            raise ValueError(f"model {self.id!r}: unknown capabilities {sorted(unknown)}")


class FallbackModels(list[ModelInfo]):
    """What ``list_models`` returns when the upstream's list could not be fetched and the
    provider falls back to a built-in one: it still serves them, but is shown as
    "degraded (fallback list)" instead of working (start-up line, ``/v1/providers``,
    ``g4f-server providers``), so an operator sees that the live list is missing. (The
    provider logs why; the kernel only needs to know that it happened.)"""


@dataclass(slots=True)
class MediaItem:
    """One generated image (or video): a URL the gateway can fetch, or the bytes."""

    url: str | None = None
    data: bytes | None = None
    mime_type: str | None = None
    revised_prompt: str | None = None
    # Headers needed to download ``url`` (e.g. an auth header); never shown to clients.
    fetch_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SpeechResult:
    """Audio from ``create_speech``: all bytes at once, or chunks as they arrive."""

    mime_type: str
    data: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class TranscriptSegment:
    start: float
    end: float
    text: str


@dataclass(slots=True)
class Transcription:
    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[TranscriptSegment] = field(default_factory=list)


@dataclass(slots=True)
class Embeddings:
    """What ``embed`` returns: one vector of floats per input, in the input's order
    (a list of floats each, or any sequence of numbers, e.g. an ``array("f")``)."""

    vectors: Sequence[Sequence[float]]
    model: str | None = None  # the model that answered, when the upstream names it
    prompt_tokens: int | None = None  # the upstream's count; None: the kernel estimates


def _no_cookies(domain: str) -> dict[str, str]:
    return {}


@dataclass(slots=True)
class ProviderContext:
    """Everything the kernel hands a provider for one call.

    Providers never create their own HTTP session or logger: ``http`` is the gateway's
    shared ``aiohttp.ClientSession`` (connection pooling, proxy and limits in one place)
    and ``log`` is already bound to the request id and provider name.
    """

    http: aiohttp.ClientSession
    log: structlog.typing.FilteringBoundLogger
    # Per-provider dict that lives as long as the app: caches, semaphores, sessions.
    state: dict[str, Any]
    timeout: float = 300.0
    proxy: str | None = None
    # A key the client passed for this provider (body "api_key" or header X-Provider-Key).
    api_key: str | None = None
    request_id: str = ""
    # Conversation continuity: the id the client used, and what this provider returned
    # as ConversationState on the previous turn of it (None on the first turn).
    conversation_id: str | None = None
    conversation: dict[str, Any] | None = None
    # Cookies uploaded by the user for a domain (only the provider's cookie_domains).
    cookies: Callable[[str], dict[str, str]] = _no_cookies
    # Upstream response headers to pass on to the client (usage, the model used...): set
    # before the first event (chat) or before returning. Only ``x-`` names reach the
    # client, never over the gateway's own (X-G4F-*, X-Request-Id).
    response_headers: dict[str, str] = field(default_factory=dict)
