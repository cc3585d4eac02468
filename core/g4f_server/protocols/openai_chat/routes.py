"""POST /v1/chat/completions and its per-provider and per-conversation forms."""

from __future__ import annotations

from aiohttp import web

from g4f_server.pipeline import turn as pipeline
from g4f_server.protocols import streaming
from g4f_server.protocols.openai_chat.render import ChunkRenderer, completion_json
from g4f_server.requests import ChatRequest
from g4f_server.web.body import read_model
from g4f_server.web.handlers import request_body


@request_body(ChatRequest)
async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Create a chat completion (OpenAI-compatible; streaming with `stream: true`)."""
    chat = await read_model(request, ChatRequest)
    turn = await pipeline.start_turn(request, chat)
    extra = {"conversation_id": turn.conversation_id} if turn.conversation_id else None
    route = turn.run.route  # turn.model and turn.provider, without their two calls
    # A new completion id each (None): the renderers format its digits in place.
    if chat.stream:
        renderer = ChunkRenderer(
            None, route.model, route.entry.name, request=turn.chat, extra=extra
        )
        # open and relay here: a frame less per chunk
        response, write = await streaming.open_sse(turn)
        await streaming.relay(turn, renderer, write, response.write_eof)
        return response
    transcript = await pipeline.collect(turn)
    body = completion_json(
        transcript, turn.chat, model=route.model, provider=route.entry.name, extra=extra
    )  # json_response's Response, the body already encoded
    return web.Response(body=body, headers=turn.headers, content_type="application/json")
