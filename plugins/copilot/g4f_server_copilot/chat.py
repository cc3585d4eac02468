"""A chat request end to end: identity, session, attachments, the socket turn, state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from g4f_server.errors import ProviderAuthError
from g4f_server.events import ChatEvent, ConversationState, Finish
from g4f_server.provider import ProviderContext
from g4f_server_copilot import auth, chat_socket, prompt
from g4f_server_copilot.config import Timeouts
from g4f_server_copilot.errors import TOKEN_REFUSED, VISION_NEEDS_LOGIN
from g4f_server_copilot.models import DEFAULT_MODEL, mode_for
from g4f_server_copilot.session import Session

if TYPE_CHECKING:
    from g4f_server.provider import ChatRequest


def open_session(ctx: ProviderContext) -> Session:
    """The session for this request: the stored conversation's, or a fresh one."""
    stored: dict[str, Any] = ctx.conversation or {}
    creds = auth.load(ctx)
    conversation_id = stored.get("conversation_id")
    if not isinstance(conversation_id, str) or not conversation_id:
        return Session(flavour=creds.flavour, creds=creds)
    flavour = stored.get("flavour") if stored.get("flavour") in ("app", "web") else creds.flavour
    if flavour == "app":
        # The conversation belongs to the anonymous identity that started it.
        creds = auth.Credentials()
    cookies = stored.get("session_cookies")
    return Session(
        flavour=flavour,
        creds=creds,
        conversation_id=conversation_id,
        session_cookies=dict(cookies) if isinstance(cookies, dict) else {},
        title=stored.get("title"),
        use_token=stored.get("use_token") is not False,
    )


async def run(request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[ChatEvent]:
    timeouts = Timeouts.load(ctx.timeout)
    session = open_session(ctx)
    continuing = session.conversation_id is not None
    _, trailing = prompt.split_trailing_user(request.messages)
    images = prompt.trailing_images(trailing)
    if images and not (session.creds.logged_in and session.use_token):
        message = VISION_NEEDS_LOGIN
        if continuing and session.flavour == "app" and auth.load(ctx).logged_in:
            message += " This conversation was started anonymously: start a new one."
        elif not session.use_token:
            message = TOKEN_REFUSED
        elif session.creds.cookies:
            message += " The uploaded cookies carry no access token: upload a HAR file."
        raise ProviderAuthError(message)
    text = prompt.build(request.messages, continuing=continuing)
    if not continuing:
        await session.start(ctx.http, timeouts.start, ctx.proxy)
        if images and not session.use_token:
            raise ProviderAuthError(TOKEN_REFUSED)
    content = [await session.upload_image(ctx.http, i, timeouts.start, ctx.proxy) for i in images]
    content.append({"type": "text", "text": text})
    mode = mode_for(request.model or DEFAULT_MODEL)
    ctx.log.debug("copilot.turn", mode=mode, flavour=session.flavour, continuing=continuing)
    async for event in chat_socket.turn(ctx, session, content, mode, timeouts):
        yield event
    yield ConversationState(session.state())
    yield Finish("stop")
