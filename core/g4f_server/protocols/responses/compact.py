"""POST /v1/responses/compact: a conversation (input items, and/or the one a stored
response ended) compacted into its user messages and one ``compaction`` item carrying a
summary the model wrote (``compaction.py``); the output is the next request's input."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.pipeline import turn as pipeline
from g4f_server.protocols.responses import compaction
from g4f_server.protocols.responses.creation import stored_history
from g4f_server.protocols.responses.render import new_id, new_response_id
from g4f_server.protocols.responses.request import ResponsesRequest, input_messages
from g4f_server.protocols.responses.tools import plan_tools
from g4f_server.requests import ApiKey, _Open
from g4f_server.web.body import read_model
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response


class CompactRequest(_Open):
    """POST /v1/responses/compact. Other create fields (tools, reasoning, ...) are
    accepted and not used: the summary is written without tools."""

    model: str = ""
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    tools: list[dict[str, Any]] | None = None
    # Gateway fields (not OpenAI's).
    provider: str | None = None
    api_key: ApiKey | None = None
    proxy: str | None = None


@request_body(CompactRequest)
async def compact_response(request: web.Request) -> web.Response:
    """Compact a conversation into its user messages and one compaction item."""
    body = await read_model(request, CompactRequest)
    if not body.model:
        raise errors.InvalidRequestError(
            "'model' is required to compact a conversation",
            param="model",
            code="missing_required_parameter",
        )
    history = await stored_history(request, body.previous_response_id)
    items = [{"role": "user", "content": body.input}] if isinstance(body.input, str) else []
    if isinstance(body.input, list):
        items = body.input
    # Namespaced calls in the history keep the names the provider knew them by.
    turns = history + input_messages(items, plan_tools(body.tools, None))
    if not turns:
        raise errors.InvalidRequestError(
            "Nothing to compact: send 'input' items or a 'previous_response_id'",
            param="input",
        )
    ask = ResponsesRequest(
        model=body.model,
        input="",
        instructions=body.instructions,
        provider=body.provider,
        api_key=body.api_key,
        proxy=body.proxy,
    )
    chat = ask.to_chat([*turns, {"role": "user", "content": compaction.PROMPT}])
    turn = await pipeline.start_turn(request, chat)
    transcript = await pipeline.collect(turn)
    summary = "".join(transcript.text).strip()
    if not summary:  # e.g. the model called a tool instead: no summary is no compaction
        raise errors.ProviderError(
            f"Provider '{turn.provider}' wrote no summary to compact with",
            code="empty_answer",
        )
    prompt, completion, _ = transcript.token_counts(turn.chat)
    output = [
        *compaction.kept_items(turns),
        {
            "id": new_id("cmp"),
            "type": "compaction",
            "encrypted_content": compaction.encode(summary),
            "created_by": "g4f-server",
        },
    ]
    return json_response(
        {
            "id": new_response_id(),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": output,
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + completion,
            },
        },
        headers=turn.headers,
    )
