"""One user turn over the chat WebSocket: frames out, server events in (upstreams.md 1.5-1.7).

Event mapping decisions:
- ``appendText`` -> TextDelta.
- ``replaceText``: its exact meaning is unverified. We read it as "the current part's text
  is now X": when X extends what was already streamed for the part, only the new suffix is
  emitted; otherwise (a real rewrite) streamed text cannot be taken back, so X is appended
  like gpt4free does, and the rewrite is logged.
- ``chainOfThought`` -> ReasoningDelta; ``citation`` -> Citation (the kernel renders them
  as annotations); ``imageGenerated`` -> Media with the ``generatingImage`` prompt as alt.
- ``done`` ends the turn at once (no wait for title/follow-ups: they are not needed). A
  turn that ends with no text, reasoning or image is an upstream error, not an empty
  success; events before the first real piece of answer are held back so that the error
  still comes before the reply starts.
- Fields of the wrong type are ignored (numbers become text), see ``fields``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from g4f_server.errors import ProviderAuthError, ProviderError, ProviderTimeoutError
from g4f_server.events import ChatEvent, Citation, Media, ReasoningDelta, TextDelta
from g4f_server.provider import ProviderContext
from g4f_server_copilot import config, fields
from g4f_server_copilot.config import Timeouts
from g4f_server_copilot.errors import LOGIN_HINT, from_error_frame, from_http_status
from g4f_server_copilot.session import Session, forget_jar_cookies

MAX_CHALLENGES = 3
MAX_FRAME_BYTES = 32 * 1024 * 1024  # partial image previews arrive as base64 frames

# What the browser announces before its first send (upstreams.md 1.6); a backend that
# insists on this handshake rejects a bare send with invalid-event.
SET_OPTIONS: dict[str, Any] = {
    "event": "setOptions",
    "supportedCards": ["image", "weather", "local", "sports", "video", "finance"],
    "supportedFeatures": [],
    "supportedActions": [],
    "ads": {"supportedTypes": ["text"]},
}
CONSENTS: dict[str, Any] = {"event": "reportLocalConsents", "grantedConsents": []}

# Events that mean the answer is flowing (switch from the first-event to the idle timeout).
_ANSWER_EVENTS = frozenset(
    {
        "startMessage",
        "appendText",
        "replaceText",
        "chainOfThought",
        "citation",
        "generatingImage",
        "partialImageGenerated",
        "imageGenerated",
        "partCompleted",
    }
)


async def turn(
    ctx: ProviderContext,
    session: Session,
    content: list[dict[str, Any]],
    mode: str,
    timeouts: Timeouts,
) -> AsyncIterator[ChatEvent]:
    """Send one user turn and yield its answer; the socket is closed however this ends."""
    async with _login_slot(ctx, session):
        ws = await _connect(ctx, session, timeouts)
        try:
            async for event in _converse(ctx, ws, session, content, mode, timeouts):
                yield event
        finally:
            # Also runs when the consumer stops iterating (client disconnect -> aclose()).
            # Closing is best effort and must never mask the real outcome.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=2)


def _login_slot(
    ctx: ProviderContext, session: Session
) -> contextlib.AbstractAsyncContextManager[Any]:
    """Bound concurrent turns of the one uploaded login: the upstream answers 502 when an
    account runs more than about four at once. Anonymous turns each have their own
    identity and are not limited."""
    if session.flavour != "web":
        return contextlib.nullcontext()
    limit = config.max_login_turns()
    key = ("login_turns", limit)
    semaphore = ctx.state.get(key)
    if semaphore is None:
        semaphore = ctx.state[key] = asyncio.Semaphore(limit)
    return semaphore


async def _connect(
    ctx: ProviderContext, session: Session, timeouts: Timeouts
) -> aiohttp.ClientWebSocketResponse:
    params = {"api-version": "2", "clientSessionId": str(uuid.uuid4())}
    if session.token and session.flavour == "web":
        # The socket carries the signed-in identity in its query string.
        params["accessToken"] = session.token
        if session.creds.identity_type:
            params["X-UserIdentityType"] = session.creds.identity_type
    try:
        async with asyncio.timeout(timeouts.connect):
            ws = await ctx.http.ws_connect(
                config.ws_url(),
                params=params,
                headers=session.headers(),
                proxy=ctx.proxy,
                timeout=aiohttp.ClientWSTimeout(ws_close=2),
                max_msg_size=MAX_FRAME_BYTES,
                autoping=True,
            )
            forget_jar_cookies(ctx.http)
            return ws
    except TimeoutError:
        raise ProviderTimeoutError(
            f"Copilot's chat socket did not open within {timeouts.connect:g}s"
        ) from None
    except aiohttp.WSServerHandshakeError as exc:
        raise from_http_status("chat socket", exc.status, exc.message, exc.headers) from None
    except aiohttp.ClientError as exc:
        raise ProviderError(f"Copilot's chat socket is unreachable: {exc}") from None


async def _receive(ws: aiohttp.ClientWebSocketResponse, wait: float, phase: str) -> dict[str, Any]:
    """The next JSON frame; raises on silence, close or garbage."""
    try:
        msg = await ws.receive(timeout=wait)
    except TimeoutError:
        raise ProviderTimeoutError(f"Copilot went silent for {wait:g}s {phase}") from None
    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        try:
            frame = json.loads(msg.data)
        except (ValueError, UnicodeDecodeError):
            raise ProviderError(
                f"Copilot sent a frame that is not JSON: {msg.data!r:.200}"
            ) from None
        if not isinstance(frame, dict):
            raise ProviderError(f"Copilot sent a frame that is no JSON object: {msg.data[:200]}")
        return frame
    if msg.type == aiohttp.WSMsgType.ERROR:
        raise ProviderError(f"Copilot's chat socket failed {phase}: {ws.exception()}")
    # CLOSE / CLOSING / CLOSED
    raise ProviderError(
        f"Copilot closed the chat socket {phase} (close code {ws.close_code}) "
        "before the answer was complete"
    )


async def _send(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
    try:
        await ws.send_json(frame)
    except (ConnectionError, aiohttp.ClientError) as exc:
        # The server may close the socket under us (e.g. a frame it finds too big).
        raise ProviderError(
            f"Copilot's chat socket failed while sending (close code {ws.close_code}): "
            f"{exc or type(exc).__name__}"
        ) from None


async def _converse(
    ctx: ProviderContext,
    ws: aiohttp.ClientWebSocketResponse,
    session: Session,
    content: list[dict[str, Any]],
    mode: str,
    timeouts: Timeouts,
) -> AsyncIterator[ChatEvent]:
    send_frame = {
        "event": "send",
        "conversationId": session.conversation_id,
        "content": content,
        "mode": mode,
        "context": {},
    }
    # The server greets with "connected"; some clients never wait for it, so if it does
    # not come within the connect timeout we go ahead (the first-event timeout still holds).
    try:
        greeting: dict[str, Any] | None = await _receive(ws, timeouts.connect, "at greeting")
    except ProviderTimeoutError:
        greeting = None
    pending = [] if greeting is None else [greeting]
    await _send(ws, SET_OPTIONS)
    await _send(ws, CONSENTS)
    await _send(ws, send_frame)

    answering = False
    challenges = 0
    answer = _Answer(ctx, session)
    held: list[ChatEvent] = []  # events before the first real piece of answer
    while True:
        if pending:
            frame = pending.pop(0)
        elif answering:
            frame = await _receive(ws, timeouts.idle, "mid-answer")
        else:
            frame = await _receive(ws, timeouts.first_event, "before answering")
        event = fields.text(frame, "event")
        if event in _ANSWER_EVENTS:
            answering = True
        if event != "connected":
            answer.seen(event or "(unnamed)")
        match event:
            case "done":
                if not answer.substantive:
                    # Nothing to show for the turn; the kernel then tries another provider.
                    raise ProviderError(
                        f"Copilot ended the turn without an answer (it sent: {answer.trace()})",
                        code="copilot_empty_answer",
                    )
                return
            case "error":
                raise from_error_frame(frame)
            case "challenge":
                challenges += 1
                await _answer_challenge(ws, session, frame, challenges)
                await _send(ws, send_frame)
            case _:
                out = answer.event_for(frame)
                if out is None:
                    continue
                held.append(out)
                if answer.substantive:
                    # Held back until now so that an answer of only blanks or sources
                    # never starts a reply the kernel could no longer fail over from.
                    for item in held:
                        yield item
                    held.clear()


async def _answer_challenge(
    ws: aiohttp.ClientWebSocketResponse, session: Session, frame: dict[str, Any], count: int
) -> None:
    """Reply to a ``challenge`` frame (upstreams.md 1.6, 1.13), or raise when we cannot."""
    method = frame.get("method")
    if count > MAX_CHALLENGES:
        raise ProviderAuthError(
            f"Copilot kept asking for anti-bot challenges ({count}); {LOGIN_HINT} "
            "from a browser that passed the check"
        )
    if method == "cloudflare" and "cf_clearance" not in session.cookies():
        raise ProviderAuthError(
            "Copilot asked for a Cloudflare check, which only a browser can pass: upload the "
            "cf_clearance cookie of a browser that passed it on copilot.microsoft.com "
            "(POST /v1/upload_cookies), from the same IP as this server"
        )
    if method not in (None, "", "cloudflare"):
        name = fields.text(frame, "method") or "of an unknown kind"
        raise ProviderAuthError(
            f"Copilot asked for an anti-bot challenge ({name}) that this gateway cannot "
            f"solve; {LOGIN_HINT} from a browser that passed the check"
        )
    # A method-less challenge is a liveness check, and a cloudflare one is passed by the
    # cf_clearance cookie the socket's upgrade already carried: both are acknowledged with
    # an empty token. The caller repeats the held send, which the server dropped.
    await _send(
        ws, {"event": "challengeResponse", "token": "", "method": method, "id": frame.get("id")}
    )


class _Answer:
    """Turns answer frames into chat events, keeping what later frames refer to."""

    def __init__(self, ctx: ProviderContext, session: Session) -> None:
        self._ctx = ctx
        self._session = session
        self._part_text = ""  # what was streamed of the current message part
        self._image_prompt: str | None = None
        self._events: list[str] = []
        self.substantive = False  # any non-blank text, reasoning or image so far

    def seen(self, event: str) -> None:
        if len(self._events) < 12 and (not self._events or self._events[-1] != event):
            self._events.append(event)

    def trace(self) -> str:
        return ", ".join(self._events)

    def event_for(self, frame: dict[str, Any]) -> ChatEvent | None:
        match frame.get("event"):
            case "appendText":
                text = fields.text(frame, "text")
                self._part_text += text
                return self._text(text)
            case "replaceText":
                text = fields.text(frame, "text")
                if not text:
                    return None
                if text.startswith(self._part_text):
                    new = text[len(self._part_text) :]
                    self._part_text = text
                else:
                    self._ctx.log.info(
                        "copilot.replace_text_rewrite", streamed=len(self._part_text)
                    )
                    new = text
                    self._part_text += text
                return self._text(new)
            case "partCompleted" | "startMessage" as event:
                self._part_text = ""
                if event == "startMessage" and fields.string(frame, "conversationId"):
                    self._session.conversation_id = frame["conversationId"]
            case "chainOfThought":
                text = fields.text(frame, "text")
                if text:
                    self.substantive = self.substantive or bool(text.strip())
                    return ReasoningDelta(text)
            case "citation":
                url = fields.string(frame, "url")
                if url:
                    title = fields.text(frame, "title") or fields.text(frame, "name")
                    return Citation(url=url, title=title or None)
            case "generatingImage":
                self._image_prompt = fields.text(frame, "prompt") or self._image_prompt
            case "imageGenerated":
                url = fields.string(frame, "url")
                if url:
                    self.substantive = True
                    return Media(
                        kind="image",
                        url=url,
                        thumbnail_url=fields.string(frame, "thumbnailUrl"),
                        alt=self._image_prompt or fields.text(frame, "prompt") or None,
                    )
            case "titleUpdate":
                self._session.title = fields.text(frame, "title") or self._session.title
            case _:
                # received, partialImageGenerated, suggestedFollowups, cards...
                pass
        return None

    def _text(self, text: str) -> TextDelta | None:
        if not text:
            return None
        self.substantive = self.substantive or bool(text.strip())
        return TextDelta(text)
