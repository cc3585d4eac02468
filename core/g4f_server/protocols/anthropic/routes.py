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
    message_json,
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
    sent = body.__dict__  # (a pydantic attribute read takes __getattr__'s slow path)
    # worked out once, when there are tools
    dropped = body.dropped_tools if sent["tools"] else None
    if dropped:  # the caller can tell what the model was not offered
        log.info("tools_dropped", tools=dropped, model=sent["model"])
    turn = await pipeline.start_turn(request, chat)
    if dropped:
        turn.headers[DROPPED_HEADER] = ",".join(dropped)
    route = turn.run.route  # turn.model and turn.provider, without their two calls
    # A new message id each (None): the renderers format its digits in place.
    if sent["stream"]:
        renderer = MessageStream(None, route.model, route.entry.name, turn.chat)
        response, write = await streaming.open_sse(turn)  # and relay here: a frame less
        await streaming.relay(turn, renderer, write, response.write_eof)
        return response
    transcript = await pipeline.collect(turn)
    answer = message_json(transcript, turn.chat, model=route.model, provider=route.entry.name)
    # json_response's Response, the body already encoded
    return web.Response(body=answer, headers=turn.headers, content_type="application/json")


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
