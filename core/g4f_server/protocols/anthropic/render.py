"""Anthropic Messages: the internal event stream rendered as a ``message`` (non-streaming)
or as Anthropic's stream grammar (``message_start`` ... ``message_stop``), and errors in
Anthropic's shape. Imported by the middleware for the error shape: no pydantic here.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript, estimate_prompt_tokens, media_markdown
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


def new_message_id() -> str:
    return f"msg_{random.getrandbits(96):024x}"  # unique, not secret


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
# The start and the end whole, filled in by %: the model and provider as JSON strings,
# the id and the stop sequence as JSON (null or a string), the reason plain ASCII, the counts
# whole numbers. The same bytes as the dicts dumped (tests/protocols/test_anthropic.py).
_MESSAGE_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":%s,'
    b'"type":"message","role":"assistant","model":%s,"provider":%s,"content":[],'
    b'"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":0}}}'
    b"\n\n"
)
_MESSAGE_END = (
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"%s",'
    b'"stop_sequence":%s},"usage":{"input_tokens":%d,"output_tokens":%d}}\n\n' + _MESSAGE_STOP
)


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
        "_call",
        "_index",
        "_open",
        "_pinged",
        "_text_head",
        "chat",
        "id",
        "model",
        "provider",
    )

    def __init__(self, message_id: str, model: str, provider: str, chat: ChatRequest) -> None:
        self.id, self.model, self.provider, self.chat = message_id, model, provider, chat
        self._index = -1  # of the open block
        self._open: str | None = None  # "text", "thinking" or "tool_use"
        self._call: int | None = None  # event index of the open tool_use block
        self._pinged = False
        self._text_head = b""

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
        return _MESSAGE_START % (dumps(self.id), dumps(self.model), dumps(self.provider), tokens)

    def render(self, event: ev.ChatEvent) -> bytes | None:
        if isinstance(event, ev.TextDelta):  # most events: no match, no call
            if not (text := event.text):
                return None
            if self._open == "text":
                return self._text_head + dumps(text) + b"}}\n\n"
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
        if self._index < 0:  # the answer's first block (nearly always text): one template
            self._index, self._open, self._pinged = 0, "text", True
            self._text_head = _FIRST_TEXT_HEAD
            return _FIRST_TEXT + dumps(text) + b"}}\n\n"
        out = b"" if self._open == "text" else self._open_text()
        return out + self._text_head + dumps(text) + b"}}\n\n"

    def end(self, transcript: Transcript) -> bytes:
        out = self._stop_block() if self._index >= 0 else self._open_text() + self._stop_block()
        reason = stop_reason(transcript)
        sequence = _stop_sequence(transcript, reason)
        prompt, completion, _ = transcript.token_counts(self.chat)
        if type(prompt) is int and type(completion) is int:  # (an upstream's may be anything)
            stop = b"null" if sequence is None else dumps(sequence)
            return out + _MESSAGE_END % (reason.encode(), stop, prompt, completion)
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        usage = {"input_tokens": prompt, "output_tokens": completion}
        data = {"type": "message_delta", "delta": delta, "usage": usage}
        return out + _sse(b"message_delta", dumps(data)) + _MESSAGE_STOP

    def failure(self, error: errors.G4FError) -> bytes:
        return self._event("error", error_body(error))
