"""A chat request end to end: identity, session, attachments, the socket turn, state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from g4f_server.errors import ProviderAuthError
from g4f_server.events import ChatEvent, ConversationState, Finish
from g4f_server.provider import ProviderContext
from g4f_server_copilot import auth, chat_socket, config, prompt
from g4f_server_copilot.config import Timeouts
from g4f_server_copilot.errors import TOKEN_REFUSED, VISION_NEEDS_LOGIN, ConversationLost
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
    answered = False
    try:
        async for event in _turn(request, ctx, session, timeouts, continuing=continuing):
            answered = True
            yield event
    except ConversationLost:
        if not continuing or answered:
            raise
        # The upstream forgot the conversation (expired, or dropped on its side): every
        # later turn of it would fail the same way. Start a new one, with the same
        # identity, from the history the request carries (the kernel puts it in).
        ctx.log.info("copilot.conversation_lost", flavour=session.flavour)
        session = session.fresh()
        async for event in _turn(request, ctx, session, timeouts, continuing=False):
            yield event
    yield ConversationState(session.state())
    yield Finish("stop")


async def _turn(
    request: ChatRequest,
    ctx: ProviderContext,
    session: Session,
    timeouts: Timeouts,
    *,
    continuing: bool,
) -> AsyncIterator[ChatEvent]:
    built = prompt.build(
        request.messages, continuing=continuing, max_chars=config.max_message_chars()
    )
    if built.images:
        _check_vision(ctx, session, continuing)
    if not continuing:
        await session.start(ctx.http, timeouts.start, ctx.proxy)
        if built.images and not session.use_token:
            raise ProviderAuthError(TOKEN_REFUSED)
    content = [
        await session.upload_image(ctx.http, image, timeouts.start, ctx.proxy)
        for image in built.images
    ]
    content.append({"type": "text", "text": built.text})
    mode = mode_for(request.model or DEFAULT_MODEL)
    ctx.log.debug("copilot.turn", mode=mode, flavour=session.flavour, continuing=continuing)
    async for event in chat_socket.turn(ctx, session, content, mode, timeouts):
        yield event


def _check_vision(ctx: ProviderContext, session: Session, continuing: bool) -> None:
    """Images need a login's upload endpoint: refuse before any network call without one."""
    if session.creds.logged_in and session.use_token:
        return
    message = VISION_NEEDS_LOGIN
    if continuing and session.flavour == "app" and auth.load(ctx).logged_in:
        message += " This conversation was started anonymously: start a new one."
    elif not session.use_token:
        message = TOKEN_REFUSED
    elif session.creds.cookies:
        message += " The uploaded cookies carry no access token: upload a HAR file."
    raise ProviderAuthError(message)
