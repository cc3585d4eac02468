"""The Responses API's WebSocket mode: GET /v1/responses with an upgrade, then one
``response.create`` message per response, answered with the same events as the SSE
stream (one message each), in order: a connection makes one response at a time.

Continuation: a ``previous_response_id`` is looked up among the responses made on this
connection first (those made with ``store: false`` too, kept for the connection's life,
the most recent ``_KEPT``), then in the store. A response that fails (an ``error`` or a
``response.failed``) evicts the response it continued from the connection, as OpenAI's
connection-local cache does: the client starts that chain again from a full input.

Auth is the HTTP request's: the middleware checked the key of the upgrade request.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.logs import get_logger
from g4f_server.pipeline import turn as pipeline
from g4f_server.protocols import websocket
from g4f_server.protocols.responses.creation import (
    Creation,
    previous_not_found,
    stored_history,
)
from g4f_server.protocols.responses.frame import Frame
from g4f_server.protocols.responses.render import ResponseStream, finished
from g4f_server.protocols.responses.request import ResponsesRequest
from g4f_server.web.jsonio import dumps
from g4f_server.web.validation import parse_model

log = get_logger("g4f_server.responses")
_KEPT = 64  # responses a connection remembers (each a trimmed history)
# Fields of a response.create that belong to HTTP, not to this transport.
_TRANSPORT_FIELDS = ("type", "stream", "stream_options", "background", "generate")


async def responses_socket(request: web.Request) -> web.StreamResponse:
    """Responses over a WebSocket (`response.create` messages; the SSE stream's events)."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.MethodNotAllowedError(
            "GET /v1/responses is the WebSocket mode (send an Upgrade: websocket request); "
            "create a response with POST",
            headers={"Allow": "GET, POST"},
        )
    ws = web.WebSocketResponse(max_msg_size=request.app[CONFIG].max_body_size, heartbeat=30)
    await ws.prepare(request)
    session = _Session(request, ws)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await session.handle(message.data)
        elif message.type == WSMsgType.BINARY:
            await session.error(errors.InvalidRequestError("Send events as text messages"))
        else:  # ERROR: the connection is gone
            break
    return ws


class _Session:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.kept: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    async def error(self, exc: errors.G4FError) -> None:
        """An ``error`` event: the error as HTTP would give it, with its status."""
        event = {"type": "error", "status": exc.status, **exc.to_dict()}
        await self.ws.send_frame(dumps(event), WSMsgType.TEXT)

    async def handle(self, text: str) -> None:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self.error(errors.InvalidRequestError("The message is not valid JSON"))
            return
        if not isinstance(event, dict) or event.get("type") != "response.create":
            kind = event.get("type") if isinstance(event, dict) else None
            await self.error(
                errors.InvalidRequestError(
                    f"Unknown event type {kind!r}: send 'response.create'",
                    param="type",
                    code="unknown_event",
                )
            )
            return
        # The create body's fields, at the top level (or in "response", as some send).
        fields = event["response"] if isinstance(event.get("response"), dict) else event
        body_fields = {k: v for k, v in fields.items() if k not in _TRANSPORT_FIELDS}
        previous = body_fields.get("previous_response_id")
        try:
            body = parse_model(ResponsesRequest, {**body_fields, "stream": True})
            history = await self._history(body.previous_response_id)
            made = Creation(self.request, body, history)
            if fields.get("generate") is False:
                await self._warm_up(made)
                return
            completed = await self._respond(made)
        except errors.G4FError as exc:
            self._evict(previous)
            await self.error(exc)
            return
        if not completed:
            self._evict(previous)

    async def _history(self, response_id: str | None) -> list[dict[str, Any]]:
        if not response_id:
            return []
        kept = self.kept.get(response_id)
        if kept is not None:
            return kept
        try:
            return await stored_history(self.request, response_id)
        except errors.NotFoundError:
            raise previous_not_found(response_id) from None

    async def _respond(self, made: Creation) -> bool:
        turn = await pipeline.start_turn(self.request, made.chat, keep=made.keep)
        made.asked = turn.chat
        made.frame = Frame(made.body, made.response_id, turn.model, turn.provider)
        made.renderer = ResponseStream(made.frame, turn.chat, made.plan)
        completed = await websocket.stream(self.ws, turn, made.renderer)
        if completed and made.messages is not None:
            self._keep(made.response_id, made.messages)
        return completed

    async def _warm_up(self, made: Creation) -> None:
        """``generate: false``: no answer, the input kept under a new response id that
        later turns continue from (a completed response with no output)."""
        frame = Frame(made.body, made.response_id, made.body.model, "")
        renderer = ResponseStream(frame, made.chat, made.plan)
        empty = finished(frame.dict(), [], _NoTranscript(), made.chat)
        end = renderer._event("response.completed", response=empty)
        await websocket.send_events(self.ws, renderer.start() + end)
        self._keep(made.response_id, made.turns)

    def _keep(self, response_id: str, messages: list[dict[str, Any]]) -> None:
        self.kept[response_id] = messages
        while len(self.kept) > _KEPT:
            self.kept.popitem(last=False)

    def _evict(self, response_id: Any) -> None:
        if isinstance(response_id, str) and self.kept.pop(response_id, None) is not None:
            log.info("continuation_evicted", response_id=response_id)


class _NoTranscript:
    """The transcript of a warm-up: no answer, no tokens."""

    finish_reason = "stop"
    model_used = None

    def token_counts(self, chat: Any) -> tuple[int, int, bool]:
        return 0, 0, False
