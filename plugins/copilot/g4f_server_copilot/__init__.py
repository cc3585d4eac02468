"""Microsoft Copilot provider for g4f-server: the hook implementations only.

Importing this module does no network work; everything happens inside the hooks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from g4f_server import hookimpl
from g4f_server.events import ChatEvent
from g4f_server.provider import MediaItem, ModelInfo, ProviderContext, ProviderInfo
from g4f_server_copilot import auth as _auth
from g4f_server_copilot import chat as _chat
from g4f_server_copilot import images as _images
from g4f_server_copilot.auth import COOKIE_DOMAINS
from g4f_server_copilot.models import DEFAULT_IMAGE_MODEL, DEFAULT_MODEL, model_list

if TYPE_CHECKING:  # pydantic models: imported by the kernel with the first request
    from g4f_server.provider import ChatRequest, ImageRequest

__version__ = "0.1.0"


@hookimpl
def provider_info() -> ProviderInfo:
    return ProviderInfo(
        name="Copilot",
        label="Microsoft Copilot",
        url="https://copilot.microsoft.com",
        auth="optional",
        auth_hint=(
            "Works without an account (text chat and images). For vision and where anonymous "
            "chat is region-blocked, log in at copilot.microsoft.com in a browser and upload "
            "its cookies as a HAR file (DevTools > Network > Save all as HAR) or a JSON "
            "cookie export via POST /v1/upload_cookies; the HAR carries the access token. "
            "The token may also be passed as the provider api_key."
        ),
        description="Microsoft Copilot consumer chat: quick, Think Deeper, Smart (GPT-5), "
        "Study and Search modes; image generation; vision when logged in.",
        default_model=DEFAULT_MODEL,
        default_image_model=DEFAULT_IMAGE_MODEL,
        cookie_domains=COOKIE_DOMAINS,
        public_names=True,  # a built-in plugin: serves gpt-4o & co. (docs/plugins.md)
    )


@hookimpl
def auth_status(ctx: ProviderContext) -> dict[str, object]:
    return _auth.status(ctx)


@hookimpl
async def list_models(ctx: ProviderContext) -> list[ModelInfo]:
    # The upstream has no model listing: the modes are fixed.
    return model_list()


@hookimpl
def chat(request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[ChatEvent]:
    return _chat.run(request, ctx)


@hookimpl
async def generate_images(request: ImageRequest, ctx: ProviderContext) -> list[MediaItem]:
    return await _images.generate(request, ctx)
