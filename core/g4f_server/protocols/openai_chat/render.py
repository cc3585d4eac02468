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
    completion_id: str,
    model: str,
    provider: str,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """``completion_body`` encoded, byte for byte. The usual answer (text only, no
    gateway fields) is spliced from fixed bytes around its variable parts, with no dict
    to build and walk; anything else is the dict encoded."""
    if transcript.tools or transcript.reasoning or transcript.citations or extra:
        body = completion_body(
            transcript,
            request,
            completion_id=completion_id,
            model=model,
            provider=provider,
            extra=extra,
        )
        return dumps(body)
    usage = transcript.usage
    if (
        usage is not None
        and not usage.details
        and not usage.estimated
        and type(prompt := usage.prompt_tokens) is int
        and type(completion := usage.completion_tokens) is int
        and type(total := usage.total) is int
    ):  # the upstream's counts, as an upstream usually sends them
        counts = _USAGE % (prompt, completion, total)
    else:
        counts = dumps(transcript.usage_dict(request))
    return b"".join((
        b'{"id":', dumps(completion_id),
        b',"object":"chat.completion","created":', b"%d" % time.time(),
        b',"model":', dumps(transcript.model_used or model), b',"provider":', dumps(provider),
        b',"choices":[{"index":0,"message":{"role":"assistant","content":',
        dumps("".join(transcript.text)),
        b',"refusal":null},"logprobs":null,"finish_reason":',
        dumps(transcript.finish_reason), b'}],"usage":',
        counts, b"}",
    ))  # fmt: skip


_USAGE = b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}'


# The usual stream's end after the chunk head: the finish chunk (no gateway fields, no
# usage chunk asked for) and [DONE], per finish reason, encoded once.
_ENDS = {
    reason: b'{},"logprobs":null,"finish_reason":' + dumps(reason) + b"}]}\n\n" + sse.DONE
    for reason in ("stop", "length", "tool_calls", "content_filter")
}

# Events that only shape the end (finish reason, usage, stored state): no chunk of their own.
_AT_THE_END = frozenset({ev.Finish, ev.Usage, ev.ConversationState})


class ChunkRenderer:
    """Turns events into chat.completion.chunk SSE lines sharing one id.

    Content chunks are the hot path (one per upstream chunk): everything but the delta
    is the same in each, so it is encoded once and the delta spliced in.
    """

    __slots__ = (
        "_head",
        "_text_head",
        "created",
        "extra",
        "id",
        "model",
        "provider",
        "request",
        "text_parts",
    )
    _TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'
    _TEXT_TAIL = b"}" + _TAIL

    def __init__(
        self,
        completion_id: str,
        model: str,
        provider: str,
        *,
        request: ChatRequest | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.id = completion_id
        self.created = int(time.time())
        self.provider = provider
        self.request = request  # for the usage chunk (stream_options.include_usage)
        self.extra = extra  # gateway fields of the last chunk (conversation_id)
        self._set_model(model)

    def _set_model(self, model: str) -> None:
        self.model = model
        # One join, not a chain of concatenations (a new bytes object each).
        self._head = head = b"".join((
            b'data: {"id":', dumps(self.id),
            b',"object":"chat.completion.chunk","created":', str(self.created).encode(),
            b',"model":', dumps(model), b',"provider":', dumps(self.provider),
            b',"choices":[{"index":0,"delta":',
        ))  # fmt: skip
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
        return self._head + b'{"role":"assistant","content":""}' + self._TAIL

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
