"""The OpenAI Responses API: POST /v1/responses (and /api/{provider}/responses), and the
stored responses: GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.pipeline import turn as pipeline
from g4f_server.pipeline.history import reply_message, trim_history
from g4f_server.pipeline.scope import anonymous_client, owner_key
from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols import streaming
from g4f_server.protocols.responses.render import (
    ResponseStream,
    finished,
    new_id,
    new_response_id,
    output_items,
    response_frame,
)
from g4f_server.protocols.responses.request import ResponsesRequest, input_messages
from g4f_server.requests import ChatRequest
from g4f_server.storage.factory import response_bounds
from g4f_server.storage.interfaces import RESPONSES, response_too_large
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response, read_json
from g4f_server.web.validation import parse_model


@request_body(ResponsesRequest)
async def create_response(request: web.Request) -> web.StreamResponse:
    """Create a model response (OpenAI Responses API; streaming with `stream: true`)."""
    body = parse_model(ResponsesRequest, await read_json(request))
    store = request.app[RESPONSES]
    if body.store:  # a body larger than a record may be is refused before any provider runs
        bounds = response_bounds(request.app[CONFIG])
        if (request.content_length or 0) > bounds["max_record"]:
            raise response_too_large(request.content_length or 0, bounds["max_record"])
    history: list[dict[str, Any]] = []
    if body.previous_response_id:
        previous = await store.load_response(_owner(request, body.previous_response_id))
        if previous is None:
            raise _not_found(body.previous_response_id, param="previous_response_id")
        history = previous["messages"]
    items = body.input_items()
    turns = history + input_messages(items)
    chat = body.to_chat(turns)
    response_id = new_response_id()
    renderer: ResponseStream | None = None
    made: list[dict[str, Any]] = []  # the final body, built once for the store and the client
    # What the closures need of the turn, never the turn itself: the turn holds ``keep``,
    # and a cycle through it left every stored answer's objects to the garbage collector
    # (~50 us a request in collections).
    asked: ChatRequest | None = None

    def final(transcript: Transcript) -> dict[str, Any]:
        if not made:
            if renderer is not None:
                made.append(renderer.final(transcript))
            else:
                assert asked is not None  # set once the turn has started
                made.append(finished(frame, output_items(transcript), transcript, asked))
        return made[0]

    async def keep(transcript: Transcript) -> None:
        record = {
            "response": final(transcript),
            "input_items": _with_ids(items),
            "messages": trim_history([*turns, reply_message(transcript)]),
        }
        await store.save_response(_owner(request, response_id), record)

    turn = await pipeline.start_turn(request, chat, keep=keep if body.store else None)
    asked = turn.chat
    frame = response_frame(body, response_id, turn.model, turn.provider)
    if body.stream:
        renderer = ResponseStream(frame, turn.chat)
        return await streaming.stream(turn, renderer)
    transcript = await pipeline.collect(turn)
    return json_response(final(transcript), headers=turn.headers)


async def get_response(request: web.Request) -> web.Response:
    """Retrieve a stored response."""
    return json_response((await _record(request))["response"])


async def delete_response(request: web.Request) -> web.Response:
    """Delete a stored response."""
    response_id = request.match_info["response_id"]
    if not await request.app[RESPONSES].delete_response(_owner(request, response_id)):
        raise _not_found(response_id)
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
    record = await request.app[RESPONSES].load_response(_owner(request, response_id))
    if record is None:
        raise _not_found(response_id)
    return record


def _owner(request: web.Request, response_id: str) -> str:
    """The store key of a stored response, scoped as conversations are."""
    return owner_key(request.headers, response_id, client=anonymous_client(request))


def _not_found(response_id: str, param: str | None = None) -> errors.NotFoundError:
    # Unknown, expired, deleted, stored with store=false or someone else's: one answer.
    return errors.NotFoundError(
        f"No response with id '{response_id}'", param=param, code="response_not_found"
    )


def _with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as the API lists them: each with an id, message content as parts."""
    out = []
    for item in items:
        item = dict(item)
        kind = item.setdefault("type", "message")
        if kind == "message":
            if isinstance(item.get("content"), str):
                part = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": part, "text": item["content"]}]
            item.setdefault("status", "completed")
        prefix = {"message": "msg", "function_call": "fc", "reasoning": "rs"}.get(kind, "fco")
        item.setdefault("id", new_id(prefix))
        out.append(item)
    return out
