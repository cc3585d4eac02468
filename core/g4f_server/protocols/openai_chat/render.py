"""OpenAI chat completions: the internal event stream rendered as
CreateChatCompletionResponse (non-streaming) or CreateChatCompletionStreamResponse chunks.
"""

from __future__ import annotations

import random
import time
from typing import Any

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript, media_markdown
from g4f_server.protocols import sse
from g4f_server.protocols.named import named_fields
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps

__all__ = [
    "ChunkRenderer",
    "Transcript",
    "completion_body",
    "completion_json",
    "new_completion_id",
]


_bits = random.getrandbits


def new_completion_id() -> str:
    # unique, not secret; % rather than an f-string with a format spec: ~0.5k less
    return "chatcmpl-%024x" % _bits(96)  # noqa: UP031


def completion_body(
    transcript: Transcript,
    request: ChatRequest,
    *,
    completion_id: str,
    model: str,
    provider: str,
    created: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(transcript.text) if transcript.text or not transcript.tools else None,
        "refusal": None,
    }
    if transcript.tools:
        message["tool_calls"] = transcript.tool_calls()
    if transcript.reasoning:
        message["reasoning_content"] = "".join(transcript.reasoning)
    if transcript.citations:
        message["annotations"] = [
            {"type": "url_citation", "url_citation": {"url": c.url, "title": c.title or c.url}}
            for c in transcript.citations
        ]
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": transcript.model_used or model,
        "provider": provider,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": transcript.finish_reason,
            }
        ],
        "usage": transcript.usage_dict(request),
    }
    if extra:
        body.update(extra)
    return body


def completion_json(
    transcript: Transcript,
    request: ChatRequest,
    *,
    completion_id: str | None = None,
    model: str,
    provider: str,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """``completion_body`` encoded, byte for byte; ``completion_id`` None: a new one
    (``new_completion_id``'s form). The usual answer (text only, no gateway fields) is
    one bytes format of fixed text around its variable parts, the new id's digits
    included, with no dict to build and walk; anything else is the dict encoded."""
    if transcript.tools or transcript.reasoning or transcript.citations or extra:
        body = completion_body(
            transcript,
            request,
            completion_id=new_completion_id() if completion_id is None else completion_id,
            model=model,
            provider=provider,
            extra=extra,
        )
        return dumps(body)
    finish = transcript.finish or "stop"  # finish_reason's rule when there are no tools
    reason = _REASONS.get(finish) or dumps(finish)
    named = named_fields(transcript.model_used or model, provider)
    text = dumps("".join(transcript.text))
    new = completion_id is None
    ident = _bits(96) if new else dumps(completion_id)  # a new id's digits, or the id
    usage = transcript.usage
    if (
        usage is not None
        and not usage.details
        and not usage.estimated
        and type(prompt := usage.prompt_tokens) is int
        and type(completion := usage.completion_tokens) is int
        and type(total := usage.total) is int
    ):  # the upstream's counts, as an upstream usually sends them: one format in all
        counted = _NEW_COUNTED if new else _GIVEN_COUNTED
        return counted % (ident, time.time(), named, text, reason, prompt, completion, total)
    usage_json = dumps(transcript.usage_dict(request))
    return (_NEW_USAGE if new else _GIVEN_USAGE) % (
        ident,
        time.time(),
        named,
        text,
        reason,
        usage_json,
    )


# The JSON answer's fixed text around its variable parts, for one bytes format: a new id
# (its digits formatted in place) or a given one, and the usual usage or any other.
_ANSWER = (
    b',"object":"chat.completion","created":%d,"model":%s'
    b',"choices":[{"index":0,"message":{"role":"assistant","content":%s'
    b',"refusal":null},"logprobs":null,"finish_reason":%s}],"usage":'
)
_NEW_ID = b'{"id":"chatcmpl-%024x"'
_COUNTS = b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}'
_NEW_COUNTED = _NEW_ID + _ANSWER + _COUNTS
_NEW_USAGE = _NEW_ID + _ANSWER + b"%s}"
_GIVEN_COUNTED = b'{"id":%s' + _ANSWER + _COUNTS
_GIVEN_USAGE = b'{"id":%s' + _ANSWER + b"%s}"

# A finish reason as JSON, for the usual ones.
_REASONS = {reason: dumps(reason) for reason in ("stop", "length", "tool_calls", "content_filter")}


# The usual stream's end after the chunk head: the finish chunk (no gateway fields, no
# usage chunk asked for) and [DONE], per finish reason, encoded once.
_ENDS = {
    reason: b'{},"logprobs":null,"finish_reason":' + dumps(reason) + b"}]}\n\n" + sse.DONE
    for reason in ("stop", "length", "tool_calls", "content_filter")
}

# A chunk's frame up to its model: a new id's digits formatted in place, or a given id.
_CHUNK_FROM_OBJECT = b',"object":"chat.completion.chunk","created":%d,"model":'
_CHUNK_NEW = b'data: {"id":"chatcmpl-%024x"' + _CHUNK_FROM_OBJECT
_CHUNK_GIVEN = b'data: {"id":%s' + _CHUNK_FROM_OBJECT
_CHOICES = b',"choices":[{"index":0,"delta":'

# Events that only shape the end (finish reason, usage, stored state): no chunk of their own.
_AT_THE_END = frozenset({ev.Finish, ev.Usage, ev.ConversationState})


class ChunkRenderer:
    """Turns events into chat.completion.chunk SSE lines sharing one id.

    Content chunks are the hot path (one per upstream chunk): everything but the delta
    is the same in each, so it is encoded once and the delta spliced in.
    """

    __slots__ = (
        "_head",
        "_id",
        "_prefix",
        "_text_head",
        "created",
        "extra",
        "model",
        "provider",
        "request",
        "text_parts",
    )
    _TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'
    _TEXT_TAIL = b"}" + _TAIL
    _ROLE = b'{"role":"assistant","content":""}' + _TAIL

    def __init__(
        self,
        completion_id: str | None,
        model: str,
        provider: str,
        *,
        request: ChatRequest | None = None,
        extra: dict[str, Any] | None = None,
        created: int | None = None,
    ) -> None:
        """``completion_id`` None: a new one (``new_completion_id``'s form), its digits
        formatted straight into the chunks' frame."""
        self.created = created = int(time.time()) if created is None else created
        self.provider = provider
        self.request = request  # for the usage chunk (stream_options.include_usage)
        self.extra = extra  # gateway fields of the last chunk (conversation_id)
        if completion_id is None:
            bits = _bits(96)
            self._id: str | int = bits  # the id's digits (see ``id``)
            self._prefix = _CHUNK_NEW % (bits, created)
        else:
            self._id = completion_id
            self._prefix = _CHUNK_GIVEN % (dumps(completion_id), created)
        self._set_model(model)

    @property
    def id(self) -> str:
        ident = self._id
        return ident if type(ident) is str else "chatcmpl-%024x" % ident  # noqa: UP031

    def _set_model(self, model: str) -> None:
        self.model = model
        self._head = head = self._prefix + named_fields(model, self.provider) + _CHOICES
        self._text_head = head + b'{"content":'
        # streaming.relay writes a text delta's chunk itself from these (no call per chunk)
        self.text_parts = (self._text_head, self._TEXT_TAIL)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._head + dumps(delta) + self._TAIL

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "provider": self.provider,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def role(self) -> bytes:
        return self._head + self._ROLE

    start = role  # streaming.StreamRenderer: the role chunk opens the stream

    def end(self, transcript: Transcript) -> bytes:
        """The finish chunk, the usage chunk if asked for, and [DONE]."""
        request = self.request
        if not self.extra and (request is None or not request.wants_usage_chunk):
            end = _ENDS.get(transcript.finish_reason)  # the usual end: one piece
            if end is not None:
                return self._head + end
        tail = self.finish(transcript, self.extra)
        if request is not None and request.wants_usage_chunk:
            tail += self.usage(transcript, request)
        return tail + sse.DONE

    def failure(self, error: errors.G4FError) -> bytes:
        return sse.event(error.to_dict()) + sse.DONE

    def render(self, event: ev.ChatEvent) -> bytes | None:
        """The SSE line for one event, or None for events that only affect the end."""
        kind = type(event)
        if kind is ev.TextDelta:  # most chunks: no match, no dict to build
            text = event.text  # type: ignore[union-attr]
            return self._text_head + dumps(text) + self._TEXT_TAIL if text else None
        if kind in _AT_THE_END:  # every answer has them: spared the walk through the match
            return None
        if kind is ev.ModelUsed:  # named by the first events: usually the model asked
            if event.name != self.model:  # type: ignore[union-attr]
                self._set_model(event.name)  # type: ignore[union-attr]
            return None
        match event:
            case ev.TextDelta(text=text):  # a plugin's subclass
                return self._text_head + dumps(text) + self._TEXT_TAIL if text else None
            case ev.ReasoningDelta(text=text):
                return self._delta({"reasoning_content": text}) if text else None
            case ev.ToolCallDelta():
                call: dict[str, Any] = {"index": event.index, "type": "function"}
                if event.id:
                    call["id"] = event.id
                function: dict[str, Any] = {"arguments": event.arguments}
                if event.name:
                    function["name"] = event.name
                call["function"] = function
                return self._delta({"tool_calls": [call]})
            case ev.Media():
                return self._delta({"content": media_markdown(event)})
            case ev.Citation():
                citation = {"url": event.url, "title": event.title or event.url}
                return self._delta(
                    {"annotations": [{"type": "url_citation", "url_citation": citation}]}
                )
            case ev.ModelUsed(name=name) if name != self.model:  # usually the one asked
                self._set_model(name)
        return None

    def finish(self, transcript: Transcript, extra: dict[str, Any] | None = None) -> bytes:
        reason = transcript.finish_reason
        if not extra:  # the usual end: spliced like a content chunk
            return self._head + b'{},"logprobs":null,"finish_reason":' + dumps(reason) + b"}]}\n\n"
        chunk = self._chunk({}, reason)
        chunk.update(extra)
        return sse.event(chunk)

    def usage(self, transcript: Transcript, request: ChatRequest) -> bytes:
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = transcript.usage_dict(request)
        return sse.event(chunk)
