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
from g4f_server.protocols.responses.frame import STATUS_OPEN, EncodedFrame, Frame
from g4f_server.protocols.responses.tools import ToolPlan, custom_input
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps

_bits = random.getrandbits


def new_id(prefix: str) -> str:
    # unique, not secret; % rather than an f-string with format specs (as chat's id)
    return "%s_%024x" % (prefix, _bits(96))  # noqa: UP031


def new_response_id() -> str:
    """``resp_``, the time in milliseconds, 64 random bits (unique, not secret: the store
    is scoped by credentials). The time first, as in OpenAI's ids, so that a client's
    store keys sort by age: trimming the oldest responses at the store's cap deletes
    neighbouring key-index entries, where random ids dirtied a page a row
    (bench/sqlite_save.py, "at the cap")."""
    # One number formatted: the milliseconds above the 64 random bits (48 bits of them
    # last until the year 10889), the digits "%012x%016x" of the two would give.
    return "resp_%028x" % (time.time_ns() // 1_000_000 << 64 | _bits(64))


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


# A message item's opening and closing events and its text deltas (ResponseStream), joined
# from these pieces: %-formatting reads its template byte by byte, a join copies it.
_ITEM_ADDED = (
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added",'
    b'"sequence_number":'
)
_MESSAGE_ADDED = (
    b'","type":"message","status":"in_progress","role":"assistant","content":[]}}\n\n'
    b'event: response.content_part.added\ndata: {"type":"response.content_part.added",'
    b'"sequence_number":'
)
_PART_ADDED = (
    b',"content_index":0,"part":{"type":"output_text","text":"","annotations":[],'
    b'"logprobs":[]}}\n\n'
)
# Small numbers encoded once (sequence numbers, output indexes): a table read is a
# fraction of formatting one.
_NUMBERS = tuple(b"%d" % n for n in range(512))
_TEXT_DELTA = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
_DELTA_TAIL = b"}\n\n"
_DELTA_POSITION_END = b',"content_index":0,"logprobs":[],"sequence_number":'
# A delta's sequence number and the key after it, encoded once: a stream's deltas are
# numbered 0, 1, 2, ... and formatting the number was most of a delta's own cost.
_SEQ_DELTA = tuple(b'%d,"delta":' % n for n in range(512))
_NUL_ESCAPED = b"\\u0000"  # how JSON writes a NUL


# The same with the delta string's opening quote, and the string's closing after it
# (``splice_texts`` writes strings without their quotes).
_SEQ_QUOTED = tuple(b'%d,"delta":"' % n for n in range(512))
_STRING_TAIL = b'"' + _DELTA_TAIL


_TEXT_DONE = (
    b'event: response.output_text.done\ndata: {"type":"response.output_text.done",'
    b'"sequence_number":'
)
_PART_DONE = (
    b'event: response.content_part.done\ndata: {"type":"response.content_part.done",'
    b'"sequence_number":'
)
_ITEM_DONE = (
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done",'
    b'"sequence_number":'
)
# A message item's end after its text (with its annotations, or none).
_MESSAGE_END = b',"logprobs":[]}]}'
_NO_ANNOTATIONS_END = b',"annotations":[]' + _MESSAGE_END
_MESSAGE_ITEM = (
    b'","type":"message","status":"completed","role":"assistant","content":['
    b'{"type":"output_text","text":'
)


def final_json(frame: Frame, transcript: Transcript, chat: ChatRequest) -> bytes | None:
    """The encoded final object of a non-streamed answer that is one text message (no
    reasoning, tool call or citation, the model the frame's): what encoding
    ``finished(frame.dict(), output_items(...), ...)`` gives, spliced; None for any other."""
    if (
        transcript.reasoning
        or transcript.tools
        or transcript.citations
        or (transcript.model_used or frame.model) != frame.model
    ):
        return None
    text = dumps("".join(transcript.text))
    message = (b'{"id":"', new_id("msg").encode(), _MESSAGE_ITEM, text, _NO_ANNOTATIONS_END)
    _, pieces = frame.encoded().final(message, text, transcript, chat)
    return b"".join(pieces)


# Events every answer has that write no line of their own (the model names the final
# response): by exact type, before a ``match`` that would try each pattern in turn.
_NO_LINE = frozenset({ev.ModelUsed, ev.Usage, ev.Finish, ev.ConversationState})


# A stream's first two events around the response they both carry (one join, one copy).
_CREATED = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":'
)
_IN_PROGRESS = (
    b'}\n\nevent: response.in_progress\ndata: {"type":"response.in_progress",'
    b'"sequence_number":1,"response":'
)


def _sse(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class ResponseStream:
    """Turns events into Responses stream events (``streaming.StreamRenderer``).

    Output items open as their first event arrives and close when another kind begins
    or the answer ends. Text deltas are the hot path: their constant part is encoded once
    per item and the sequence number and delta spliced in.
    """

    # What an answer may never need is a class default: one made per streamed response
    # sets six attributes (its instance dict is 3.11's inline values, as cheap as slots).
    _open: str | None = None  # "message", "reasoning" or "call"
    # The open message or reasoning item, its output_index, its text so far and its
    # annotations: set when an item opens. The defaults are immutable, so that nothing
    # could ever be added to a value shared by every stream.
    _item: dict[str, Any] | None = None
    _index = 0
    _parts: list[str] | tuple[str, ...] = ()
    _annotations: list[dict[str, Any]] | tuple[dict[str, Any], ...] = ()
    _open_call: int | None = None
    _text_line = b""
    _between = b""
    _message_position = b""  # '"item_id":...,"output_index":N' of the open message
    _message_id = b""  # and its id
    _final: dict[str, Any] | None = None
    _closing = b""
    _opening: EncodedFrame | None = None  # the frame as start() encoded it
    _opening_model = ""  # and the model it named
    # The message item closed last, encoded in pieces, and its text encoded (JSON).
    _closed_message: tuple[tuple[bytes, ...], bytes] | None = None

    def __init__(self, frame: Frame, chat: ChatRequest, plan: ToolPlan) -> None:
        self.frame = frame
        self.chat = chat
        self.plan = plan
        self.output: list[dict[str, Any]] = []  # items in output_index order
        self._seq = 0
        # event index -> (output_index, item); custom tool call id -> its JSON so far
        self._calls: dict[int, tuple[int, dict[str, Any]]] = {}
        self._custom: dict[str, str] = {}

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
        out = b"" if self._open is None else self._close()  # the first item: nothing open
        self._open = "message"
        index = self._index = len(self.output)
        # The id's digits formatted once, as bytes (the id is hex: nothing to escape).
        encoded_id = b"msg_%024x" % _bits(96)
        self._item = item = {
            "id": encoded_id.decode(),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self.output.append(item)
        self._parts, self._annotations = [], []
        seq = self._seq
        self._seq = seq + 2
        # A message's events are the hot path after the deltas: joined from byte pieces
        # (the item id is hex, the index a number: nothing in them needs escaping).
        self._message_id = encoded_id
        number = _NUMBERS[index] if index < 512 else b"%d" % index
        position = b"".join((b'"item_id":"', encoded_id, b'","output_index":', number))
        self._text_line = line = b"".join((_TEXT_DELTA, position, _DELTA_POSITION_END))
        self._message_position = position
        self._between = _STRING_TAIL + line  # one delta's end, the next's start
        return out + b"".join(
            (
                _ITEM_ADDED, _NUMBERS[seq] if seq < 512 else b"%d" % seq,
                b',"output_index":', number, b',"item":{"id":"', encoded_id, _MESSAGE_ADDED,
                _NUMBERS[seq + 1] if seq < 511 else b"%d" % (seq + 1), b",", position,
                _PART_ADDED,
            )
        )  # fmt: skip

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
            return b"".join(self._close_message())
        position = self._position()
        done = _reasoning(item["id"], text)
        out = self._event("response.reasoning_summary_text.done", **position,
                          summary_index=0, text=text)  # fmt: skip
        out += self._event("response.reasoning_summary_part.done", **position,
                           summary_index=0, part=done["summary"][0])  # fmt: skip
        self.output[index] = done
        return out + self._event("response.output_item.done", output_index=index, item=done)

    def _close_message(self) -> list[bytes]:
        """The open message's closing events, in pieces to join; the item encoded is kept
        (``_closed_message``, for the final object)."""
        text, index = "".join(self._parts), self._index
        # The output's item completed in place (the keys in ``_message``'s order).
        item = self._item
        item["status"] = "completed"
        item["content"].append(
            {"type": "output_text", "text": text, "annotations": self._annotations, "logprobs": []}
        )
        seq = self._seq
        self._seq = seq + 3
        encoded, position = dumps(text), self._message_position
        annotations = dumps(self._annotations) if self._annotations else b"[]"
        message = (
            b'{"id":"', self._message_id, _MESSAGE_ITEM, encoded, b',"annotations":',
            annotations, _MESSAGE_END,
        )  # fmt: skip
        self._closed_message = (message, encoded)
        return [
            _TEXT_DONE, _NUMBERS[seq] if seq < 512 else b"%d" % seq, b",", position,
            b',"content_index":0,"text":', encoded, b',"logprobs":[]}\n\n',
            _PART_DONE, _NUMBERS[seq + 1] if seq < 511 else b"%d" % (seq + 1), b",", position,
            b',"content_index":0,"part":{"type":"output_text","text":', encoded,
            b',"annotations":', annotations, b',"logprobs":[]}}\n\n',
            _ITEM_DONE, _NUMBERS[seq + 2] if seq < 510 else b"%d" % (seq + 2),
            b',"output_index":', _NUMBERS[index] if index < 512 else b"%d" % index,
            b',"item":', *message, b"}\n\n",
        ]  # fmt: skip

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
        # The frame is the same in both events: its pieces joined into both at once.
        encoded = self._opening = self.frame.encoded()
        self._opening_model = self.frame.model
        self._seq = 2
        head, middle, closing = encoded.head, encoded.middle, encoded.closing
        return b"".join(
            (_CREATED, head, STATUS_OPEN, middle, closing,
             _IN_PROGRESS, head, STATUS_OPEN, middle, closing, b"}\n\n")
        )  # fmt: skip

    def render(self, event: ev.ChatEvent) -> bytes | None:
        kind = type(event)
        if kind is ev.TextDelta or (kind not in _NO_LINE and isinstance(event, ev.TextDelta)):
            text = event.text  # most events: no match, no call
            if self._open != "message" or not text:
                return self._text(text) if text else None
            self._parts.append(text)
            seq = self._seq
            self._seq = seq + 1
            number = _SEQ_DELTA[seq] if seq < 512 else b'%d,"delta":' % seq
            return b"".join((self._text_line, number, dumps(text), _DELTA_TAIL))
        if kind in _NO_LINE:  # every answer has them: spared the walk through the match
            if kind is ev.ModelUsed:
                self.frame.set_model(event.name)  # type: ignore[union-attr]
            return None
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
                self.frame.set_model(name)
        return None

    def _text(self, text: str) -> bytes:
        out = b"" if self._open == "message" else self._open_message()
        self._parts.append(text)
        return out + self._delta(text)

    def _delta(self, text: str) -> bytes:
        """An ``output_text.delta`` of the open message."""
        seq = self._seq
        self._seq = seq + 1
        number = _SEQ_DELTA[seq] if seq < 512 else b'%d,"delta":' % seq
        return b"".join((self._text_line, number, dumps(text), _DELTA_TAIL))

    # The write loop (streaming.relay) gathers a read's text deltas and hands them to
    # ``splice_texts``; ``text_parts`` only tells it to (a delta's bytes around its text
    # are not fixed: its sequence number changes).
    text_parts = (b"", b"")

    def splice_texts(self, lines: list[bytes], texts: list[str], _b: bytes, _a: bytes) -> None:
        """Append the ``output_text.delta`` events of consecutive non-empty text deltas
        (opening the message first if none is) to ``lines`` and empty ``texts``: the
        bytes ``render`` gives one delta at a time.

        A run is encoded in one call, joined by NUL (which JSON writes as ``\\u0000``)
        and split there; the strings are interleaved with the numbers and the bytes
        between two deltas by slice assignment: no Python step per delta.
        That is exact only when no text has a NUL or a backslash of its own (as
        ``streaming.splice``); otherwise, or when a text cannot be encoded, each delta
        is encoded alone, as ``render`` would (failing at the same delta)."""
        if self._open != "message":
            lines.append(self._open_message())
        self._parts += texts
        line, seq, count = self._text_line, self._seq, len(texts)
        if count > 1:
            joined = "\0".join(texts)
            if "\\" not in joined and joined.count("\0") == count - 1:
                try:
                    encoded = dumps(joined)
                except TypeError:  # a lone surrogate: one at a time below
                    pass
                else:
                    self._seq = end = seq + count
                    # Each delta's string without its quotes: split where JSON wrote a NUL
                    # (a short scan: the separator search is C's, over the texts alone).
                    strings = encoded[1:-1].split(_NUL_ESCAPED)
                    # number (with the string's opening quote), string, closing + next line
                    woven = [self._between] * (3 * count)
                    # each number with the opening quote of its string
                    woven[0::3] = (
                        _SEQ_QUOTED[seq:end]
                        if end <= 512
                        else [b'%d,"delta":"' % n for n in range(seq, end)]
                    )
                    woven[1::3] = strings
                    woven[-1] = _STRING_TAIL
                    lines.append(line)
                    lines += woven
                    texts.clear()
                    return
        for text in texts:  # one delta a read (a paced upstream), or the exceptions
            seq = self._seq
            self._seq = seq + 1
            number = _SEQ_DELTA[seq] if seq < 512 else b'%d,"delta":' % seq
            lines += (line, number, dumps(text), _DELTA_TAIL)
        texts.clear()

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
            self._final = finished(self.frame.dict(), list(self.output), transcript, self.chat)
        return self._final

    def end(self, transcript: Transcript) -> bytes:
        """The last events. An answer that is one text message (most), its final object
        not built yet: its closing events and the final object spliced from the
        opening's pieces (``EncodedFrame.final``), in one join. Any other: the final
        object encoded."""
        if (
            self._open == "message"
            and self._final is None
            and len(self.output) == 1
            and not self._annotations
            and (transcript.model_used or self.frame.model) == self._opening_model
        ):
            self._open = None
            pieces = self._close_message()
            message, text = self._closed_message  # type: ignore[misc]
            opening: EncodedFrame = self._opening  # type: ignore[assignment]
            kind, response = opening.final(message, text, transcript, self.chat)
        else:
            body = self.final(transcript)
            kind = b"completed" if body["status"] == "completed" else b"incomplete"
            pieces, response = [self._closing], (dumps(body),)
        seq = self._seq
        self._seq = seq + 1
        pieces += (
            b"event: response.", kind, b'\ndata: {"type":"response.', kind,
            b'","sequence_number":', _NUMBERS[seq] if seq < 512 else b"%d" % seq,
            b',"response":', *response, b"}\n\n",
        )  # fmt: skip
        return b"".join(pieces)

    def failure(self, error: errors.G4FError) -> bytes:
        return self._event(
            "response.failed", response=failed(self.frame.dict(), self.output, error)
        )
