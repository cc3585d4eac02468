"""OpenAI Responses API: the internal event stream rendered as a ``response`` object
(non-streaming) or as the Responses stream grammar (``response.created`` ...
``response.completed``, each event with an increasing ``sequence_number``).
"""

from __future__ import annotations

import random
import time
from typing import Any

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript, media_markdown
from g4f_server.protocols.responses.request import ResponsesRequest
from g4f_server.protocols.responses.tools import ToolPlan, custom_input, echoed_tools
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps


def new_id(prefix: str) -> str:
    return f"{prefix}_{random.getrandbits(96):024x}"  # unique, not secret


def new_response_id() -> str:
    """``resp_``, the time in milliseconds, 64 random bits (unique, not secret: the store
    is scoped by credentials). The time first, as in OpenAI's ids, so that a client's
    store keys sort by age: trimming the oldest responses at the store's cap deletes
    neighbouring key-index entries, where random ids dirtied a page a row
    (bench/sqlite_save.py, "at the cap")."""
    return f"resp_{time.time_ns() // 1_000_000:012x}{random.getrandbits(64):016x}"


def response_frame(
    request: ResponsesRequest, response_id: str, model: str, provider: str
) -> dict[str, Any]:
    """The fields of a response that echo the request, status ``in_progress``: every
    field the API reference and the Open Responses specification require, the request's
    value where it sent one, else the API's default."""
    fmt = (request.text or {}).get("format") or {"type": "text"}
    reasoning = request.reasoning or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "completed_at": None,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": model,
        "provider": provider,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": request.store,
        "background": False,
        "service_tier": request.service_tier or "default",
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "presence_penalty": request.presence_penalty or 0.0,
        "frequency_penalty": request.frequency_penalty or 0.0,
        "top_logprobs": request.top_logprobs or 0,
        "text": {"format": fmt, "verbosity": (request.text or {}).get("verbosity", "medium")},
        "tool_choice": request.tool_choice or "auto",
        "tools": echoed_tools(request.tools),
        "truncation": request.truncation or "disabled",
        "usage": None,
        "user": request.user,
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
        "prompt_cache_retention": request.prompt_cache_retention,
        "metadata": request.metadata or {},
    }


def finished(
    frame: dict[str, Any],
    output: list[dict[str, Any]],
    transcript: Transcript,
    chat: ChatRequest,
) -> dict[str, Any]:
    """The final response object: ``frame`` with its output, status and usage."""
    body = dict(frame)
    body["completed_at"] = int(time.time())
    reason = transcript.finish_reason
    if reason in ("length", "content_filter"):
        body["status"] = "incomplete"
        body["incomplete_details"] = {
            "reason": "max_output_tokens" if reason == "length" else "content_filter"
        }
    else:
        body["status"] = "completed"
    if transcript.model_used:
        body["model"] = transcript.model_used
    body["output"] = output
    body["output_text"] = "".join(
        part["text"]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
    prompt, completion, estimated = transcript.token_counts(chat)
    usage: dict[str, Any] = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }
    if estimated:
        usage["estimated"] = True
    body["usage"] = usage
    return body


def failed(frame: dict[str, Any], output: list[dict[str, Any]], error: errors.G4FError) -> dict:
    body = dict(frame)
    body["status"] = "failed"
    body["output"] = output
    body["error"] = {"code": error.code, "message": error.message}
    return body


def _message(item_id: str, text: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
    return {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }


def _reasoning(item_id: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def _citation(citation: ev.Citation, at: int) -> dict[str, Any]:
    return {
        "type": "url_citation",
        "url": citation.url,
        "title": citation.title or citation.url,
        "start_index": at,
        "end_index": at,
    }


def output_items(transcript: Transcript, plan: ToolPlan) -> list[dict[str, Any]]:
    """The output of a non-streamed answer: reasoning, the message, the tool calls."""
    items: list[dict[str, Any]] = []
    if transcript.reasoning:
        items.append(_reasoning(new_id("rs"), "".join(transcript.reasoning)))
    text = "".join(transcript.text)
    if text or not transcript.tools:
        annotations = [_citation(c, len(text)) for c in transcript.citations]
        items.append(_message(new_id("msg"), text, annotations))
    for call in transcript.tool_calls():
        function = call["function"]
        call_id = call["id"] or new_id("call")
        prefix = "ctc" if plan.is_custom(function["name"]) else "fc"
        name, arguments = function["name"], function["arguments"]
        items.append(plan.call_item(new_id(prefix), call_id, name, arguments))
    return items


# A message item's opening and closing events, to be %-formatted (ResponseStream).
_MESSAGE_ADDED = (
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added",'
    b'"sequence_number":%d,"output_index":%d,"item":{"id":"%b","type":"message",'
    b'"status":"in_progress","role":"assistant","content":[]}}\n\n'
    b'event: response.content_part.added\ndata: {"type":"response.content_part.added",'
    b'"sequence_number":%d,%b,"content_index":0,'
    b'"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}}\n\n'
)
_TEXT_PART = b'{"type":"output_text","text":%b,"annotations":%b,"logprobs":[]}'
_MESSAGE_DONE = (
    b'event: response.output_text.done\ndata: {"type":"response.output_text.done",'
    b'"sequence_number":%d,%b,"content_index":0,"text":%b,"logprobs":[]}\n\n'
    b'event: response.content_part.done\ndata: {"type":"response.content_part.done",'
    b'"sequence_number":%d,%b,"content_index":0,"part":%b}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done",'
    b'"sequence_number":%d,"output_index":%d,"item":{"id":"%b","type":"message",'
    b'"status":"completed","role":"assistant","content":[%b]}}\n\n'
)


def _sse(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class ResponseStream:
    """Turns events into Responses stream events (``streaming.StreamRenderer``).

    Output items open as their first event arrives and close when another kind begins
    or the answer ends. Text deltas are the hot path: their constant part is encoded once
    per item and the sequence number and delta spliced in.
    """

    def __init__(self, frame: dict[str, Any], chat: ChatRequest, plan: ToolPlan) -> None:
        self.frame = frame
        self.chat = chat
        self.plan = plan
        self.output: list[dict[str, Any]] = []  # items in output_index order
        self._seq = 0
        self._open: str | None = None  # "message", "reasoning" or "call"
        self._item: dict[str, Any] = {}  # the open message / reasoning item
        self._index = 0  # its output_index
        self._parts: list[str] = []  # its text so far
        self._annotations: list[dict[str, Any]] = []
        self._calls: dict[
            int, tuple[int, dict[str, Any]]
        ] = {}  # event index -> (output_index, item)
        self._open_call: int | None = None
        self._custom: dict[str, str] = {}  # custom tool call id -> its JSON arguments so far
        self._text_line = b""
        self._message_position = b""  # '"item_id":...,"output_index":N' of the open message
        self._final: dict[str, Any] | None = None
        self._closing = b""

    # --- framing

    def _event(self, kind: str, **fields: Any) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        return _sse(kind, dumps({"type": kind, "sequence_number": seq, **fields}))

    def _position(self) -> dict[str, Any]:
        return {"item_id": self._item["id"], "output_index": self._index}

    # --- opening and closing items

    def _add_item(self, item: dict[str, Any]) -> bytes:
        index = len(self.output)
        self.output.append(item)
        return self._event("response.output_item.added", output_index=index, item=item)

    def _open_message(self) -> bytes:
        out = self._close()
        self._open = "message"
        index = self._index = len(self.output)
        item_id = new_id("msg")
        self._item = {"id": item_id, "type": "message", "status": "in_progress"}
        self._item.update(role="assistant", content=[])
        self.output.append(self._item)
        self._parts, self._annotations = [], []
        seq = self._seq
        self._seq = seq + 2
        # A message's events are the hot path after the deltas: byte templates, formatted
        # (the item id is hex, the index a number: nothing in them needs escaping).
        position = b'"item_id":"%b","output_index":%d' % (item_id.encode(), index)
        self._text_line = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            + position + b',"content_index":0,"logprobs":[],"sequence_number":%d,"delta":%b}\n\n'
        )  # fmt: skip
        self._message_position = position
        return out + _MESSAGE_ADDED % (seq, index, item_id.encode(), seq + 1, position)

    def _open_reasoning(self) -> bytes:
        out = self._close()
        self._open = "reasoning"
        self._index = len(self.output)
        self._item = {"id": new_id("rs"), "type": "reasoning", "summary": []}
        self._parts = []
        out += self._add_item(self._item)
        return out + self._event(
            "response.reasoning_summary_part.added",
            **self._position(),
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        )

    def _close(self) -> bytes:
        """The closing events of the open item ("" if none)."""
        kind, self._open = self._open, None
        if kind is None:
            return b""
        if kind == "call":
            index, call = self._calls[self._open_call]  # type: ignore[index]
            self._open_call = None
            return self._close_call(index, call)
        item, text, index = self._item, "".join(self._parts), self._index
        if kind == "message":
            self.output[index] = _message(item["id"], text, self._annotations)
            seq = self._seq
            self._seq = seq + 3
            encoded, position = dumps(text), self._message_position
            part = _TEXT_PART % (encoded, dumps(self._annotations))
            return _MESSAGE_DONE % (
                seq, position, encoded,
                seq + 1, position, part,
                seq + 2, index, item["id"].encode(), part,
            )  # fmt: skip
        position = self._position()
        done = _reasoning(item["id"], text)
        out = self._event("response.reasoning_summary_text.done", **position,
                          summary_index=0, text=text)  # fmt: skip
        out += self._event("response.reasoning_summary_part.done", **position,
                           summary_index=0, part=done["summary"][0])  # fmt: skip
        self.output[index] = done
        return out + self._event("response.output_item.done", output_index=index, item=done)

    def _close_call(self, index: int, call: dict[str, Any]) -> bytes:
        call["status"] = "completed"
        if call["type"] == "custom_tool_call":
            # The input is the string inside the function's JSON arguments: known whole
            # only at the end, so its one delta comes with its done.
            call["input"] = custom_input(self._custom.pop(call["id"], ""))
            position = {"item_id": call["id"], "output_index": index}
            out = self._event(
                "response.custom_tool_call_input.delta", **position, delta=call["input"]
            )
            out += self._event(
                "response.custom_tool_call_input.done", **position, input=call["input"]
            )
        else:
            out = self._event(
                "response.function_call_arguments.done",
                item_id=call["id"],
                output_index=index,
                name=call["name"],
                arguments=call["arguments"],
            )
        return out + self._event("response.output_item.done", output_index=index, item=call)

    # --- streaming.StreamRenderer

    def start(self) -> bytes:
        # The frame is the same in both events: encoded once.
        response = dumps(self.frame)
        self._seq = 2
        return (
            b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
            b'"response":' + response + b"}\n\n"
            b'event: response.in_progress\ndata: {"type":"response.in_progress",'
            b'"sequence_number":1,"response":' + response + b"}\n\n"
        )

    def render(self, event: ev.ChatEvent) -> bytes | None:
        if isinstance(event, ev.TextDelta):  # most events: no match, no call
            text = event.text
            if self._open != "message" or not text:
                return self._text(text) if text else None
            self._parts.append(text)
            seq = self._seq
            self._seq = seq + 1
            return self._text_line % (seq, dumps(text))
        match event:
            case ev.ReasoningDelta(text=text) if text:
                out = self._open_reasoning() if self._open != "reasoning" else b""
                self._parts.append(text)
                return out + self._event(
                    "response.reasoning_summary_text.delta",
                    **self._position(),
                    summary_index=0,
                    delta=text,
                )
            case ev.ToolCallDelta():
                return self._tool_call(event)
            case ev.Media():
                return self._text(media_markdown(event))
            case ev.Citation():
                out = self._open_message() if self._open != "message" else b""
                annotation = _citation(event, len("".join(self._parts)))
                self._annotations.append(annotation)
                return out + self._event(
                    "response.output_text.annotation.added",
                    **self._position(),
                    content_index=0,
                    annotation_index=len(self._annotations) - 1,
                    annotation=annotation,
                )
            case ev.ModelUsed(name=name):
                self.frame["model"] = name
        return None

    def _text(self, text: str) -> bytes:
        out = b"" if self._open == "message" else self._open_message()
        self._parts.append(text)
        seq = self._seq
        self._seq = seq + 1
        return out + self._text_line % (seq, dumps(text))

    def _tool_call(self, event: ev.ToolCallDelta) -> bytes:
        out = b""
        known = self._calls.get(event.index)
        if known is None:
            out = self._close()
            call = self._new_call(event)
            index = len(self.output)
            self._calls[event.index] = (index, call)
            self._open, self._open_call = "call", event.index
            out += self._add_item(call)
        else:
            index, call = known
            if event.name and not call["name"]:
                call["name"] = self.plan.call_item("", "", event.name, "")["name"]
        if not event.arguments:
            return out
        if call["type"] == "custom_tool_call":  # its input goes out whole when it closes
            self._custom[call["id"]] = self._custom.get(call["id"], "") + event.arguments
            return out
        call["arguments"] += event.arguments
        return out + self._event(
            "response.function_call_arguments.delta",
            item_id=call["id"],
            output_index=index,
            delta=event.arguments,
        )

    def _new_call(self, event: ev.ToolCallDelta) -> dict[str, Any]:
        """An opening call item: a function call, or a custom tool call (its JSON
        arguments gathered in ``_custom`` until it closes)."""
        item = self.plan.call_item("", event.id or new_id("call"), event.name or "", "")
        item["id"] = new_id("ctc" if item["type"] == "custom_tool_call" else "fc")
        item["status"] = "in_progress"
        return item

    def final(self, transcript: Transcript) -> dict[str, Any]:
        """The final response object (computed once: stored, then sent)."""
        if self._final is None:
            self._closing = self._close()
            self._final = finished(self.frame, list(self.output), transcript, self.chat)
        return self._final

    def end(self, transcript: Transcript) -> bytes:
        body = self.final(transcript)
        kind = "response.completed" if body["status"] == "completed" else "response.incomplete"
        return self._closing + self._event(kind, response=body)

    def failure(self, error: errors.G4FError) -> bytes:
        return self._event("response.failed", response=failed(self.frame, self.output, error))
