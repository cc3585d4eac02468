"""Anthropic Messages: the internal event stream rendered as a ``message`` (non-streaming)
or as Anthropic's stream grammar (``message_start`` ... ``message_stop``), and errors in
Anthropic's shape. Imported by the middleware for the error shape: no pydantic here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript, estimate_prompt_tokens, media_markdown
from g4f_server.protocols.named import named_fields
from g4f_server.web.jsonio import dumps

if TYPE_CHECKING:
    from g4f_server.requests import ChatRequest

# Our status codes stay; the error type is Anthropic's name for that status.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def error_body(error: errors.G4FError) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(error.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


_bits = random.getrandbits


def new_message_id() -> str:
    return "msg_%024x" % _bits(96)  # noqa: UP031 (unique, not secret; % costs less)


def stop_reason(transcript: Transcript) -> str:
    reason = transcript.finish_reason
    if reason == "stop" and transcript.stop_sequence is not None:  # cut by the kernel
        return "stop_sequence"
    return _STOP_REASONS.get(reason, "end_turn")


def _stop_sequence(transcript: Transcript, reason: str) -> str | None:
    """The stop sequence that ended the answer, given its ``stop_reason``."""
    return transcript.stop_sequence if reason == "stop_sequence" else None


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic clients expect. Arguments that are
    not a JSON object are kept under ``arguments`` rather than dropped."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def _citation(citation: ev.Citation) -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "url": citation.url,
        "title": citation.title or citation.url,
        "cited_text": "",
        "encrypted_index": "",
    }


def _usage(transcript: Transcript, chat: ChatRequest) -> dict[str, Any]:
    prompt, completion, _ = transcript.token_counts(chat)
    return {"input_tokens": prompt, "output_tokens": completion}


def message_body(
    transcript: Transcript, chat: ChatRequest, *, message_id: str, model: str, provider: str
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if transcript.reasoning:
        content.append(
            {"type": "thinking", "thinking": "".join(transcript.reasoning), "signature": ""}
        )
    text = "".join(transcript.text)
    if text or not transcript.tools:
        block: dict[str, Any] = {"type": "text", "text": text}
        if transcript.citations:
            block["citations"] = [_citation(c) for c in transcript.citations]
        content.append(block)
    for call in transcript.tool_calls():
        function = call["function"]
        content.append(
            {
                "type": "tool_use",
                "id": call["id"] or f"toolu_{random.getrandbits(96):024x}",
                "name": function["name"],
                "input": tool_input(function["arguments"]),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": transcript.model_used or model,
        "provider": provider,
        "content": content,
        "stop_reason": (reason := stop_reason(transcript)),
        "stop_sequence": _stop_sequence(transcript, reason),
        "usage": _usage(transcript, chat),
    }


def message_json(
    transcript: Transcript,
    chat: ChatRequest,
    *,
    message_id: str | None = None,
    model: str,
    provider: str,
) -> bytes:
    """``message_body`` encoded, byte for byte; ``message_id`` None: a new one
    (``new_message_id``'s form). The usual answer (one text block, whole-number counts)
    is one bytes format of fixed text around its variable parts, the new id's digits
    included, with no dict to build and walk; anything else is the dict encoded."""
    if not (transcript.reasoning or transcript.tools or transcript.citations):
        prompt, completion, _ = transcript.token_counts(chat)
        if type(prompt) is int and type(completion) is int:  # (an upstream's may be anything)
            reason = stop_reason(transcript)
            stop = b"null" if reason != "stop_sequence" else dumps(transcript.stop_sequence)
            named = named_fields(transcript.model_used or model, provider)
            text = dumps("".join(transcript.text))
            parts = (named, text, reason.encode(), stop, prompt, completion)
            if message_id is None:
                return _ANSWER_NEW % (_bits(96), *parts)
            return _ANSWER_GIVEN % (dumps(message_id), *parts)
    if message_id is None:
        message_id = new_message_id()
    body = message_body(transcript, chat, message_id=message_id, model=model, provider=provider)
    return dumps(body)


# The usual JSON answer's fixed text around its variable parts (``message_json``).
_ANSWER_REST = (
    b'"type":"message","role":"assistant","model":%s,"content":[{"type":"text","text":%s}],'
    b'"stop_reason":"%s","stop_sequence":%s,"usage":{"input_tokens":%d,"output_tokens":%d}}'
)
_ANSWER_NEW = b'{"id":"msg_%024x",' + _ANSWER_REST
_ANSWER_GIVEN = b'{"id":%s,' + _ANSWER_REST


def _sse(kind: bytes, data: bytes) -> bytes:
    return b"event: " + kind + b"\ndata: " + data + b"\n\n"


# The events whose bytes hardly change, encoded once: a streamed message is mostly these
# and text deltas (``MessageStream``). Their fields are numbers: nothing to escape.
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
_TEXT_START = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)
_TEXT_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"text_delta","text":'
)
# The first block of most answers, a text block, and the ping after it, whole.
_FIRST_TEXT_HEAD = _TEXT_DELTA % 0
_FIRST_TEXT = _TEXT_START % 0 + _PING + _FIRST_TEXT_HEAD
# The start and the end whole, filled in by %: the id (a new one's digits in place, or a
# given one as JSON), the model and provider as JSON strings (``named_fields``), the stop
# sequence as JSON (null or a string), the reason plain ASCII, the counts whole numbers.
# The same bytes as the dicts dumped (tests/protocols/test_anthropic_stream_bytes.py).
_START_REST = (
    b'"type":"message","role":"assistant","model":%s,"content":[],'
    b'"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":0}}}'
    b"\n\n"
)
_START_HEAD = b'event: message_start\ndata: {"type":"message_start","message":{"id":'
_START_NEW = _START_HEAD + b'"msg_%024x",' + _START_REST
_START_GIVEN = _START_HEAD + b"%s," + _START_REST
_MESSAGE_END = (
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"%s",'
    b'"stop_sequence":%s},"usage":{"input_tokens":%d,"output_tokens":%d}}\n\n' + _MESSAGE_STOP
)
# The usual end, per reason: no stop sequence (null), whole-number counts.
_ENDS = {
    reason: _MESSAGE_END.replace(b"%s", reason.encode(), 1).replace(b"%s", b"null", 1)
    for reason in ("end_turn", "max_tokens", "tool_use", "refusal")
}
_FIRST_STOP = _BLOCK_STOP % 0
# The usual answer's end whole (its one text block stopped), per finish: stop_reason's
# mapping when there is no tool call nor stop sequence (any other finish: end_turn).
_END_TURN = _FIRST_STOP + _ENDS["end_turn"]
_USUAL_ENDS = {
    finish: _FIRST_STOP + _ENDS[_STOP_REASONS[finish or "stop"]]
    for finish in (None, *_STOP_REASONS)
}
_TEXT_TAIL = b"}}\n\n"


Splice = Callable[[list[bytes], list[str], bytes, bytes], None]
_splice: Splice | None = None


def _load_splice() -> Splice:
    """``streaming.splice``, imported with the first run of several deltas: the models
    route imports this module for its error shape, and streaming brings pydantic."""
    global _splice
    from g4f_server.protocols.streaming import splice

    _splice = splice
    return splice


# Events with no Messages event of their own (the model is named in message_start, the
# rest shapes the end): every answer has them, spared the walk through the match.
_NO_EVENT = frozenset({ev.ModelUsed, ev.Usage, ev.Finish, ev.ConversationState})


class MessageStream:
    """Turns events into Anthropic stream events (``streaming.StreamRenderer``).

    Content blocks open as their first event arrives and stop when another kind begins or
    the answer ends; ``ping`` follows the first block start, as Anthropic sends it. Text
    deltas are the hot path: their constant part is encoded once per block.
    """

    __slots__ = (
        "_bits",
        "_call",
        "_index",
        "_open",
        "_pinged",
        "_text_head",
        "chat",
        "model",
        "provider",
    )

    def __init__(
        self, message_id: str | None, model: str, provider: str, chat: ChatRequest
    ) -> None:
        """``message_id`` None: a new one (``new_message_id``'s form), its digits
        formatted straight into ``message_start``."""
        self._bits: str | int = _bits(96) if message_id is None else message_id
        self.model, self.provider, self.chat = model, provider, chat
        self._index = -1  # of the open block
        self._open: str | None = None  # "text", "thinking" or "tool_use"
        self._call: int | None = None  # event index of the open tool_use block
        self._pinged = False
        self._text_head = b""

    @property
    def id(self) -> str:
        ident = self._bits
        return ident if type(ident) is str else "msg_%024x" % ident  # noqa: UP031

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        data = {"type": kind, **data}
        return _sse(kind.encode(), dumps(data))

    def _start_block(self, kind: str, block: dict[str, Any] | None) -> bytes:
        """Stop the open block and start one (``block`` None: a text block)."""
        out = self._stop_block()
        self._index += 1
        self._open = kind
        if block is None:  # the usual block: its start is a template
            out += _TEXT_START % self._index
        else:
            start = {"index": self._index, "content_block": block}
            out += self._event("content_block_start", start)
        if not self._pinged:
            self._pinged = True
            out += _PING
        return out

    def _stop_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = self._call = None
        return _BLOCK_STOP % self._index

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._event("content_block_delta", {"index": self._index, "delta": delta})

    def start(self) -> bytes:
        tokens = estimate_prompt_tokens(self.chat)
        named, ident = named_fields(self.model, self.provider), self._bits
        if type(ident) is int:
            return _START_NEW % (ident, named, tokens)
        return _START_GIVEN % (dumps(ident), named, tokens)

    def render(self, event: ev.ChatEvent) -> bytes | None:
        if isinstance(event, ev.TextDelta):  # most events: no match, no call
            if not (text := event.text):
                return None
            if self._open == "text":
                return self._text_head + dumps(text) + _TEXT_TAIL
            return self._text(text)
        if type(event) in _NO_EVENT:
            return None
        match event:
            case ev.ReasoningDelta(text=text) if text:
                out = b""
                if self._open != "thinking":
                    out = self._start_block(
                        "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                    )
                return out + self._delta({"type": "thinking_delta", "thinking": text})
            case ev.ToolCallDelta():
                out = b""
                if self._open != "tool_use" or self._call != event.index:
                    block = {
                        "type": "tool_use",
                        "id": event.id or f"toolu_{random.getrandbits(96):024x}",
                        "name": event.name or "",
                        "input": {},
                    }
                    out = self._start_block("tool_use", block)
                    self._call = event.index
                if event.arguments:
                    delta = {"type": "input_json_delta", "partial_json": event.arguments}
                    out += self._delta(delta)
                return out
            case ev.Media():
                return self._text(media_markdown(event))
            case ev.Citation():
                out = b"" if self._open == "text" else self._open_text()
                return out + self._delta({"type": "citations_delta", "citation": _citation(event)})
        return None

    def _open_text(self) -> bytes:
        out = self._start_block("text", None)
        self._text_head = _TEXT_DELTA % self._index
        return out

    def _text(self, text: str) -> bytes:
        encoded = dumps(text)  # first: a text that cannot be encoded changes nothing
        return self._opening() + encoded + _TEXT_TAIL

    def _opening(self) -> bytes:
        """Open a text block (stopping the open one): the bytes up to a delta's text."""
        if self._index < 0:  # the answer's first block (nearly always text): one template
            self._index, self._open, self._pinged = 0, "text", True
            self._text_head = _FIRST_TEXT_HEAD
            return _FIRST_TEXT
        return (b"" if self._open == "text" else self._open_text()) + self._text_head

    # The write loop (streaming.relay) gathers a read's text deltas and hands them to
    # ``splice_texts`` instead of calling ``render`` for each; ``text_parts`` only tells
    # it to (the bytes before the first delta depend on the open block).
    text_parts = (b"", b"")

    def splice_texts(self, lines: list[bytes], texts: list[str], _b: bytes, _a: bytes) -> None:
        """Append the events of consecutive non-empty text deltas to ``lines`` (opening a
        text block first if none is open) and empty ``texts``: the bytes ``render``
        gives one delta at a time, and a text that cannot be encoded fails after the
        deltas before it, as there."""
        if self._open != "text":
            lines.append(self._text(texts[0]))
            if len(texts) == 1:
                texts.clear()
                return
            del texts[0]
        if len(texts) == 1:  # one delta a read (a paced upstream): no splice
            lines += (self._text_head, dumps(texts[0]), _TEXT_TAIL)
            texts.clear()
            return
        (_splice or _load_splice())(lines, texts, self._text_head, _TEXT_TAIL)

    def end(self, transcript: Transcript) -> bytes:
        usage = transcript.usage
        if (
            self._index == 0
            and self._open == "text"
            and usage is not None
            and transcript.stop_sequence is None
            and not transcript.tools
            and type(prompt := usage.prompt_tokens) is int
            and type(completion := usage.completion_tokens) is int
        ):  # the usual answer: one text block, the upstream's counts: one template
            return _USUAL_ENDS.get(transcript.finish, _END_TURN) % (prompt, completion)
        out = self._stop_block() if self._index >= 0 else self._open_text() + self._stop_block()
        reason = stop_reason(transcript)
        prompt, completion, _ = transcript.token_counts(self.chat)
        if type(prompt) is int and type(completion) is int:  # (an upstream's may be anything)
            if reason != "stop_sequence":
                return out + _ENDS[reason] % (prompt, completion)
            stop = dumps(transcript.stop_sequence)
            return out + _MESSAGE_END % (b"stop_sequence", stop, prompt, completion)
        sequence = _stop_sequence(transcript, reason)
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        usage = {"input_tokens": prompt, "output_tokens": completion}
        data = {"type": "message_delta", "delta": delta, "usage": usage}
        return out + _sse(b"message_delta", dumps(data)) + _MESSAGE_STOP

    def failure(self, error: errors.G4FError) -> bytes:
        return self._event("error", error_body(error))
