"""Anthropic Messages: POST /v1/messages (and /api/{provider}/messages), and
POST /v1/messages/count_tokens. Their errors are in Anthropic's shape: each handler
declares ``error_body`` (``errors_as``) and the middleware renders it."""

from __future__ import annotations

from aiohttp import web

from g4f_server.logs import get_logger
from g4f_server.pipeline import turn as pipeline
from g4f_server.pipeline.transcript import estimate_prompt_tokens, estimate_tokens
from g4f_server.protocols import streaming
from g4f_server.protocols.anthropic.render import (
    MessageStream,
    error_body,
    message_body,
    new_message_id,
)
from g4f_server.protocols.anthropic.request import CountTokensRequest, MessagesRequest
from g4f_server.web.body import read_model
from g4f_server.web.handlers import errors_as, request_body
from g4f_server.web.jsonio import dumps, json_response

log = get_logger("g4f_server.anthropic")
DROPPED_HEADER = "X-G4F-Dropped-Tools"


@errors_as(error_body)
@request_body(MessagesRequest)
async def create_message(request: web.Request) -> web.StreamResponse:
    """Create a message (Anthropic Messages API; streaming with `stream: true`)."""
    body = await read_model(request, MessagesRequest)
    chat = body.to_chat()
    dropped = body.dropped_tools if body.tools else None  # worked out once, when there are tools
    if dropped:  # the caller can tell what the model was not offered
        log.info("tools_dropped", tools=dropped, model=body.model)
    turn = await pipeline.start_turn(request, chat)
    if dropped:
        turn.headers[DROPPED_HEADER] = ",".join(dropped)
    message_id = new_message_id()
    if body.stream:
        renderer = MessageStream(message_id, turn.model, turn.provider, turn.chat)
        response, write = await streaming.open_sse(turn)  # and relay here: a frame less
        await streaming.relay(turn, renderer, write, response.write_eof)
        return response
    transcript = await pipeline.collect(turn)
    message = message_body(
        transcript, turn.chat, message_id=message_id, model=turn.model, provider=turn.provider
    )
    return json_response(message, headers=turn.headers)


@errors_as(error_body)
@request_body(CountTokensRequest)
async def count_tokens(request: web.Request) -> web.Response:
    """Count a message request's input tokens (an estimate: UTF-8 bytes / 4)."""
    body = await read_model(request, CountTokensRequest)
    chat = body.to_chat()
    tokens = estimate_prompt_tokens(chat)
    if body.tools:
        tokens += estimate_tokens(dumps(body.tools).decode())
    return json_response({"input_tokens": tokens})
