"""The OpenAI Responses API: POST /v1/responses (and /api/{provider}/responses), its
WebSocket mode (GET /v1/responses with an upgrade: ``socket.py``), compaction
(POST /v1/responses/compact: ``compact.py``) and the stored responses:
GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.pipeline import turn as pipeline
from g4f_server.protocols import streaming
from g4f_server.protocols.responses.creation import (
    Creation,
    not_found,
    owner,
    stored_history,
)
from g4f_server.protocols.responses.frame import Frame
from g4f_server.protocols.responses.render import ResponseStream
from g4f_server.protocols.responses.request import ResponsesRequest
from g4f_server.storage.factory import response_bounds
from g4f_server.storage.interfaces import RESPONSES, response_too_large
from g4f_server.web.body import read_model
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response


@request_body(ResponsesRequest)
async def create_response(request: web.Request) -> web.StreamResponse:
    """Create a model response (OpenAI Responses API; streaming with `stream: true`)."""
    body = await read_model(request, ResponsesRequest)
    sent = body.__dict__  # pydantic's __getattr__ makes attribute reads the slow kind
    # A stored body larger than a record may be is refused before any provider runs.
    if store := sent["store"]:
        bounds = response_bounds(request.app[CONFIG])
        if (request.content_length or 0) > bounds["max_record"]:
            raise response_too_large(request.content_length or 0, bounds["max_record"])
    # No earlier response (most requests): no coroutine to run for an empty history.
    history = (
        await stored_history(request, previous)
        if (previous := sent["previous_response_id"])
        else []
    )
    made = Creation(request, body, history)
    # Over HTTP nothing outlives the request unless it is stored (the WebSocket mode keeps
    # every turn for its connection): no keep, no history trimmed, for store: false.
    turn = await pipeline.start_turn(request, made.chat, keep=made.keep if store else None)
    made.asked = turn.chat
    made.frame = Frame(body, made.response_id, turn.model, turn.provider)
    if made.plan.dropped:  # most requests: no hosted tool dropped, no header to add
        turn.headers.update(made.headers)
    if sent["stream"]:
        made.renderer = ResponseStream(made.frame, turn.chat, made.plan)
        # open_sse and relay here, not streaming.stream: one frame less per chunk.
        response, write = await streaming.open_sse(turn)
        await streaming.relay(turn, made.renderer, write, response.write_eof)
        return response
    transcript = await pipeline.collect(turn)
    body = made.encoded(transcript)
    return web.Response(body=body, headers=turn.headers, content_type="application/json")


async def get_response(request: web.Request) -> web.Response:
    """Retrieve a stored response."""
    return json_response((await _record(request))["response"])


async def delete_response(request: web.Request) -> web.Response:
    """Delete a stored response."""
    response_id = request.match_info["response_id"]
    if not await request.app[RESPONSES].delete_response(owner(request, response_id)):
        raise not_found(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})


async def list_input_items(request: web.Request) -> web.Response:
    """List the input items of a stored response (`order`, `limit`, `after`)."""
    items = (await _record(request))["input_items"]
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise errors.InvalidRequestError("'order' must be 'asc' or 'desc'", param="order")
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise errors.InvalidRequestError("'limit' must be 1 to 100", param="limit")
    if order == "desc":
        items = items[::-1]
    after = request.query.get("after")
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise errors.InvalidRequestError(f"No input item '{after}'", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )


async def _record(request: web.Request) -> dict[str, Any]:
    response_id = request.match_info["response_id"]
    record = await request.app[RESPONSES].load_response(owner(request, response_id))
    if record is None:
        raise not_found(response_id)
    return record  # type: ignore[no-any-return]
