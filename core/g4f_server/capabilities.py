"""What a model or a provider can do: one table the whole gateway reads.

A capability is either given by a hook (a provider that implements ``generate_images``
can make images) or declared per model (``vision``, ``tools``...): the router sends a
request only to models that have every capability it needs. The route that serves a
hook, the hook that gives a capability and the ``ProviderInfo`` field naming the
provider's default model for it are all read from ``TABLE``; nothing else names them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Capability:
    name: str
    description: str
    # The hook whose implementation gives a provider this capability (a service: the
    # kernel calls it on one chosen provider). None: a feature a model declares.
    hook: str | None = None
    # The ProviderInfo field that names the provider's default model for the service.
    default_model_field: str | None = None


TABLE: tuple[Capability, ...] = (
    Capability("chat", "answers chat requests", "chat", "default_model"),
    Capability("image", "generates images", "generate_images", "default_image_model"),
    Capability("speech", "turns text into audio", "create_speech", "default_speech_model"),
    Capability(
        "transcription", "turns audio into text", "transcribe", "default_transcription_model"
    ),
    Capability("embeddings", "turns text into vectors", "embed", "default_embedding_model"),
    Capability("video", "generates video (through the image hook)"),
    Capability("vision", "reads image parts of a chat"),
    Capability("tools", "calls the request's function tools"),
    Capability("json_schema", "honours response_format (JSON mode and JSON schemas)"),
    Capability("reasoning", "streams its visible reasoning"),
    Capability("audio_input", "reads input_audio parts of a chat"),
    # Honours the request's stop sequences upstream; else the kernel cuts (pipeline).
    Capability("stop", "honours stop sequences itself"),
    # An embedding model that reads token ids as input (OpenAI's, vLLM's): ids of one
    # tokenizer mean nothing to another model, so only these are sent token arrays.
    Capability("token_input", "embeds token-id inputs as well as texts"),
)

BY_NAME: dict[str, Capability] = {c.name: c for c in TABLE}
CAPABILITIES: frozenset[str] = frozenset(BY_NAME)
# The services: hook -> capability, and back.
HOOK_CAPABILITY: dict[str, str] = {c.hook: c.name for c in TABLE if c.hook}
CAPABILITY_HOOK: dict[str, str] = {c.name: c.hook for c in TABLE if c.hook}
# Hooks the kernel calls on a single chosen provider (never through pm.hook).
SERVICE_HOOKS: tuple[str, ...] = tuple(HOOK_CAPABILITY)
