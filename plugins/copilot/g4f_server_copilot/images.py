"""Image generation: Copilot draws when asked to, on the ordinary chat socket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from g4f_server.errors import InvalidRequestError, ProviderError
from g4f_server.events import Media, TextDelta
from g4f_server.provider import MediaItem, ProviderContext
from g4f_server_copilot import auth, chat_socket, config
from g4f_server_copilot.config import Timeouts
from g4f_server_copilot.session import Session

if TYPE_CHECKING:
    from g4f_server.provider import ImageRequest


def image_prompt(request: ImageRequest) -> str:
    text = f"Draw an image: {request.prompt}"
    dims = request.dimensions
    if dims:
        width, height = dims
        shape = "square" if width == height else "landscape" if width > height else "portrait"
        text += f"\n(Make it {shape}, {width}x{height}.)"
    if request.negative_prompt:
        text += f"\n(Avoid: {request.negative_prompt}.)"
    return text


async def generate(request: ImageRequest, ctx: ProviderContext) -> list[MediaItem]:
    """One fresh conversation per turn until ``request.n`` images are collected.

    Turns run one after another: the upstream fails under a few concurrent turns.
    """
    timeouts = Timeouts.load(ctx.timeout)
    text = image_prompt(request)
    limit = config.max_message_chars()
    if len(text) > limit:
        raise InvalidRequestError(
            f"Copilot takes at most {limit:,} characters per message; this image prompt "
            f"makes {len(text):,}",
            param="prompt",
        )
    items: list[MediaItem] = []
    for _ in range(request.n):
        creds = auth.load(ctx)
        session = Session(flavour=creds.flavour, creds=creds)
        await session.start(ctx.http, timeouts.start, ctx.proxy)
        content = [{"type": "text", "text": text}]
        said: list[str] = []
        async for event in chat_socket.turn(ctx, session, content, "chat", timeouts):
            if isinstance(event, Media) and event.kind == "image" and event.url:
                items.append(MediaItem(url=event.url, revised_prompt=event.alt))
            elif isinstance(event, TextDelta):
                said.append(event.text)
        if len(items) >= request.n:
            break
        if not items:
            # Usually a refusal (content policy) that came back as plain text.
            answer = " ".join("".join(said).split())[:300]
            raise ProviderError(f"Copilot answered without an image: {answer or '(nothing)'}")
    return items[: request.n]
