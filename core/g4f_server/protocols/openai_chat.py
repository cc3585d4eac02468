"""OpenAI chat completions: the internal event stream rendered as
CreateChatCompletionResponse (non-streaming) or CreateChatCompletionStreamResponse chunks.
"""

from __future__ import annotations

import random
import time
from typing import Any

from g4f_server import events as ev
from g4f_server import sse
from g4f_server.jsonio import dumps
from g4f_server.schemas.chat import ChatRequest


def new_completion_id() -> str:
    return f"chatcmpl-{random.getrandbits(96):024x}"  # unique, not secret


def estimate_tokens(text: str) -> int:
    """Rough count (UTF-8 bytes / 4) used when the upstream reports no usage."""
    return (len(text.encode()) + 3) // 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    return 3 + sum(estimate_tokens(m.text()) + 4 for m in request.messages)


def media_markdown(media: ev.Media) -> str:
    """Media has no field of its own in chat completions: it travels as markdown."""
    alt = (media.alt or media.kind).replace("]", " ").replace("\n", " ")
    if media.kind == "image":
        if media.thumbnail_url:
            return f"\n[![{alt}]({media.thumbnail_url})]({media.url})\n"
        return f"\n![{alt}]({media.url})\n"
    return f"\n[{alt}]({media.url})\n"


class Transcript:
    """Everything a chat answer consisted of, accumulated event by event."""

    __slots__ = (
        "citations",
        "finish",
        "model_used",
        "reasoning",
        "state",
        "text",
        "tools",
        "usage",
    )

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.citations: list[ev.Citation] = []
        self.usage: ev.Usage | None = None
        self.finish: str | None = None
        self.model_used: str | None = None
        self.state: dict[str, Any] | None = None

    def add(self, event: ev.ChatEvent) -> None:
        if isinstance(event, ev.TextDelta):  # most events: skip the match below
            self.text.append(event.text)
            return
        match event:
            case ev.ReasoningDelta(text=text):
                self.reasoning.append(text)
            case ev.ToolCallDelta():
                call = self.tools.setdefault(
                    event.index,
                    {
                        "id": event.id or "",
                        "type": "function",
                        "function": {"name": "", "arguments": ""},
                    },
                )
                if event.id:
                    call["id"] = event.id
                if event.name:
                    call["function"]["name"] = event.name
                call["function"]["arguments"] += event.arguments
            case ev.Citation():
                self.citations.append(event)
            case ev.Usage():
                self.usage = event
            case ev.Finish(reason=reason):
                self.finish = reason
            case ev.ModelUsed(name=name):
                self.model_used = name
            case ev.ConversationState(data=data):
                self.state = data
            case ev.Media():
                self.text.append(media_markdown(event))

    @property
    def finish_reason(self) -> str:
        if self.tools and self.finish in (None, "stop"):
            return "tool_calls"
        return self.finish or "stop"

    def usage_dict(self, request: ChatRequest) -> dict[str, Any]:
        if self.usage is not None:
            out: dict[str, Any] = {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total,
            }
            out.update(self.usage.details)
            if self.usage.estimated:
                out["estimated"] = True
            return out
        prompt = estimate_prompt_tokens(request)
        completion = estimate_tokens("".join(self.text) + "".join(self.reasoning))
        for call in self.tools.values():
            completion += estimate_tokens(call["function"]["name"] + call["function"]["arguments"])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "estimated": True,
        }

    def annotations(self) -> list[dict[str, Any]]:
        return [
            {"type": "url_citation", "url_citation": {"url": c.url, "title": c.title or c.url}}
            for c in self.citations
        ]


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
        message["tool_calls"] = [transcript.tools[i] for i in sorted(transcript.tools)]
    if transcript.reasoning:
        message["reasoning_content"] = "".join(transcript.reasoning)
    if transcript.citations:
        message["annotations"] = transcript.annotations()
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": transcript.model_used or model,
        "provider": provider,
        "system_fingerprint": None,
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


class ChunkRenderer:
    """Turns events into chat.completion.chunk SSE lines sharing one id.

    Content chunks are the hot path (one per upstream chunk): everything but the delta
    is the same in each, so it is encoded once and the delta spliced in.
    """

    __slots__ = ("_head", "_text_head", "created", "id", "model", "provider")
    _TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'
    _TEXT_TAIL = b"}" + _TAIL

    def __init__(self, completion_id: str, model: str, provider: str) -> None:
        self.id = completion_id
        self.created = int(time.time())
        self.provider = provider
        self._set_model(model)

    def _set_model(self, model: str) -> None:
        self.model = model
        self._head = (
            b'data: {"id":' + dumps(self.id)
            + b',"object":"chat.completion.chunk","created":' + str(self.created).encode()
            + b',"model":' + dumps(model) + b',"provider":' + dumps(self.provider)
            + b',"system_fingerprint":null,"choices":[{"index":0,"delta":'
        )  # fmt: skip
        self._text_head = self._head + b'{"content":'

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._head + dumps(delta) + self._TAIL

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "provider": self.provider,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def role(self) -> bytes:
        return self._head + b'{"role":"assistant","content":""}' + self._TAIL

    def render(self, event: ev.ChatEvent) -> bytes | None:
        """The SSE line for one event, or None for events that only affect the end."""
        if isinstance(event, ev.TextDelta):  # most chunks: no match, no dict to build
            text = event.text
            return self._text_head + dumps(text) + self._TEXT_TAIL if text else None
        match event:
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
            case ev.ModelUsed(name=name):
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
