"""One ``responses.create``, whatever carries it (an HTTP POST, or a ``response.create``
message on a WebSocket): the request's tools and input as the provider's chat request,
the final response object built once, and what is kept of the turn.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.logs import get_logger
from g4f_server.pipeline.history import reply_message, trim_history
from g4f_server.pipeline.scope import anonymous_client, owner_key
from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols.responses.frame import Frame
from g4f_server.protocols.responses.render import (
    ResponseStream,
    final_json,
    finished,
    new_id,
    new_response_id,
    output_items,
)
from g4f_server.protocols.responses.request import ResponsesRequest, input_messages, plain_chat
from g4f_server.protocols.responses.tools import DROPPED_HEADER, NO_TOOLS
from g4f_server.requests import ChatRequest
from g4f_server.storage.interfaces import RESPONSES
from g4f_server.web.jsonio import dumps

log = get_logger("g4f_server.responses")


class Creation:
    """A response being made: ``chat`` for the provider, then ``final`` (built once for
    the store and the client) and ``messages`` (the conversation so far, for the next
    turn) once the answer is complete."""

    # Set as the response is made (class defaults: one object a request sets six).
    _turns: list[dict[str, Any]] | None = None  # a plain input's: made when asked
    renderer: ResponseStream | None = None
    messages: list[dict[str, Any]] | None = None
    # What the closures need of the turn, never the turn itself: the turn holds ``keep``,
    # and a cycle through it left every stored answer's objects to the garbage collector
    # (~50 us a request in collections).
    asked: ChatRequest | None = None
    frame: Frame | None = None  # set once the turn has started
    _made: dict[str, Any] | None = None

    def __init__(
        self, request: web.Request, body: ResponsesRequest, history: list[dict[str, Any]]
    ) -> None:
        self.request = request
        self.body = body
        self.history = history
        # A plain request of text (most): no tools to plan, no turns to list.
        if history or (chat := plain_chat(body)) is None:
            self.plan = plan = body.tool_plan()
            chat = body.to_chat(self.turns, plan)
            if plan.dropped:
                log.info("tools_dropped", tools=",".join(plan.dropped), model=body.model)
        else:
            self.plan = NO_TOOLS
        self.chat = chat
        self.response_id = new_response_id()

    @property
    def turns(self) -> list[dict[str, Any]]:
        """The conversation to answer: the earlier turns, then this request's input as
        chat messages (a string is one user message), named by ``plan``. Listed when first
        asked for: a plain request's chat request needs none (only the store and the
        WebSocket mode ask)."""
        if self._turns is None:
            text = self.body.input
            if isinstance(text, str):
                self._turns = [*self.history, {"role": "user", "content": text}]
            else:
                self._turns = self.history + input_messages(text, self.plan)
        return self._turns

    @property
    def headers(self) -> dict[str, str]:
        """Headers of the answer besides the turn's: the hosted tools dropped."""
        return {DROPPED_HEADER: ",".join(self.plan.dropped)} if self.plan.dropped else {}

    def final(self, transcript: Transcript) -> dict[str, Any]:
        if self._made is None:
            if self.renderer is not None:
                self._made = self.renderer.final(transcript)
            else:
                assert self.asked is not None and self.frame is not None  # the turn started
                items = output_items(transcript, self.plan)
                self._made = finished(self.frame.dict(), items, transcript, self.asked)
        return self._made

    def encoded(self, transcript: Transcript) -> bytes:
        """The final object encoded (a non-streamed answer): spliced from the frame's
        bytes when nothing built it first and the answer is one text message."""
        if self._made is None and self.renderer is None:
            assert self.asked is not None and self.frame is not None  # the turn started
            if (body := final_json(self.frame, transcript, self.asked)) is not None:
                return body
        return dumps(self.final(transcript))

    async def keep(self, transcript: Transcript) -> None:
        """After the answer, before its end reaches the client: the conversation so far,
        and the stored response unless ``store`` is false."""
        self.messages = trim_history([*self.turns, reply_message(transcript)])
        if not self.body.store:
            self.final(transcript)
            return
        record = {
            "response": self.final(transcript),
            "input_items": _with_ids(self.body.input_items()),
            "messages": self.messages,
        }
        await self.request.app[RESPONSES].save_response(
            owner(self.request, self.response_id), record
        )


async def stored_history(request: web.Request, response_id: str | None) -> list[dict[str, Any]]:
    """The conversation a stored response ended, or [] without an id."""
    if not response_id:
        return []
    previous = await request.app[RESPONSES].load_response(owner(request, response_id))
    if previous is None:
        raise previous_not_found(response_id)
    return previous["messages"]  # type: ignore[no-any-return]


def owner(request: web.Request, response_id: str) -> str:
    """The store key of a stored response, scoped as conversations are."""
    return owner_key(request.headers, response_id, client=anonymous_client(request))


def not_found(response_id: str) -> errors.NotFoundError:
    # Unknown, expired, deleted, stored with store=false or someone else's: one answer.
    return errors.NotFoundError(f"No response with id '{response_id}'", code="response_not_found")


def previous_not_found(response_id: str) -> errors.NotFoundError:
    return errors.NotFoundError(
        f"Previous response with id '{response_id}' not found",
        param="previous_response_id",
        code="previous_response_not_found",
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
        prefix = {
            "message": "msg",
            "function_call": "fc",
            "custom_tool_call": "ctc",
            "reasoning": "rs",
            "compaction": "cmp",
        }.get(kind, "fco")
        item.setdefault("id", new_id(prefix))
        out.append(item)
    return out
