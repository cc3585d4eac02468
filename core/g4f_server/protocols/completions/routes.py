"""Legacy completions: POST /v1/completions (and /api/{provider}/completions)."""

from __future__ import annotations

from aiohttp import web

from g4f_server.pipeline import turn as pipeline
from g4f_server.protocols import streaming
from g4f_server.protocols.completions.render import (
    CompletionChunks,
    completion_body,
    new_completion_id,
)
from g4f_server.protocols.completions.request import CompletionRequest
from g4f_server.web.body import read_model
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response


@request_body(CompletionRequest)
async def create_completion(request: web.Request) -> web.StreamResponse:
    """Create a text completion (legacy OpenAI completions; streaming with `stream: true`)."""
    body = await read_model(request, CompletionRequest)
    # Legacy completions have no place for reasoning: a reasoning-only answer is empty.
    turn = await pipeline.start_turn(request, body.to_chat(), shows_reasoning=False)
    echo = body.prompt_text if body.echo else ""
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = CompletionChunks(
            new_completion_id(), turn.model, turn.provider, turn.chat, echo=echo, usage=usage
        )
        return await streaming.stream(turn, chunks)
    transcript = await pipeline.collect(turn)
    completion = completion_body(
        transcript,
        turn.chat,
        completion_id=new_completion_id(),
        model=turn.model,
        provider=turn.provider,
        echo=echo,
    )
    return json_response(completion, headers=turn.headers)
