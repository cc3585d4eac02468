"""Pollinations.AI provider for g4f-server: chat, images, speech and transcription.

Anonymous by default (the legacy hosts); with a Pollinations key (``POLLINATIONS_API_KEY``
or a key the client passes for this provider) every call goes to the gateway host.
This module holds the hook implementations only; importing it does no I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from g4f_server import hookimpl
from g4f_server.events import ChatItem
from g4f_server.provider import (
    MediaItem,
    ModelInfo,
    ProviderContext,
    ProviderInfo,
    SpeechResult,
    Transcription,
)
from g4f_server_pollinations import audio, images, models
from g4f_server_pollinations import chat as _chat
from g4f_server_pollinations.config import DASHBOARD_URL

if TYPE_CHECKING:  # pydantic models: imported by the kernel with the first request
    from g4f_server.provider import (
        ChatRequest,
        ImageRequest,
        SpeechRequest,
        TranscriptionRequest,
    )

__version__ = "0.1.0"
NAME = "Pollinations"


@hookimpl
def provider_info() -> ProviderInfo:
    return ProviderInfo(
        name=NAME,
        label="Pollinations.AI",
        url="https://pollinations.ai",
        auth="optional",
        auth_hint=(
            f"Works without an account. For more models and higher limits get a key at "
            f"{DASHBOARD_URL} and set POLLINATIONS_API_KEY (or pass it per request)."
        ),
        description="Free text, image, speech and transcription models from Pollinations.AI",
        priority=10,  # the anonymous, free default
        default_model=models.DEFAULT_CHAT,
        default_image_model=models.DEFAULT_IMAGE,
        default_speech_model=models.DEFAULT_SPEECH,
        default_transcription_model=models.DEFAULT_TRANSCRIPTION,
        aliases=("PollinationsAI",),  # gpt4free's name, used in the seed's examples
        public_names=True,  # a built-in plugin: serves gpt-4o & co. (docs/plugins.md)
    )


@hookimpl
async def list_models(ctx: ProviderContext) -> list[ModelInfo]:
    return await models.list_models(ctx)


@hookimpl
def chat(request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[ChatItem]:
    return _chat.chat(request, ctx)


@hookimpl
async def generate_images(request: ImageRequest, ctx: ProviderContext) -> list[MediaItem]:
    return await images.generate_images(request, ctx)


@hookimpl
async def create_speech(request: SpeechRequest, ctx: ProviderContext) -> SpeechResult:
    return await audio.create_speech(request, ctx)


@hookimpl
async def transcribe(request: TranscriptionRequest, ctx: ProviderContext) -> Transcription:
    return await audio.transcribe(request, ctx)
