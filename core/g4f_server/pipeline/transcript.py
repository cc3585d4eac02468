"""What a chat answer consisted of, accumulated event by event: the one record every
protocol renders its final body from and the pipeline stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from g4f_server import events as ev
from g4f_server.events import Finish, ModelUsed, ReasoningDelta, TextDelta, Usage

if TYPE_CHECKING:
    from g4f_server.requests import ChatRequest


def estimate_tokens(text: str) -> int:
    """Rough count (UTF-8 bytes / 4) used when the upstream reports no usage."""
    # isascii() reads a flag of the string: an ASCII text's UTF-8 length is its length.
    return ((len(text) if text.isascii() else len(text.encode())) + 3) // 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    # A string content read from the message's __dict__ (a pydantic attribute read and a
    # text() call per message were half the cost; Messages' message_start asks each time;
    # the rate limits' reservation, each request).
    total = 3
    for message in request.messages:
        content = message.__dict__["content"]
        text = content if type(content) is str else message.text()
        # estimate_tokens, inlined: a call per message was a third of the cost.
        total += ((len(text) if text.isascii() else len(text.encode())) + 3) // 4 + 4
    return total


def media_markdown(media: ev.Media) -> str:
    """Media has no field of its own in the text protocols: it travels as markdown."""
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
        "stop_sequence",
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
        self.stop_sequence: str | None = None  # the stop sequence the kernel cut at

    def add(self, event: ev.ChatEvent) -> None:
        # By exact type first: a ``match`` walks its class patterns in turn, and the
        # events every answer has (the model, usage, the finish) came late in it, at
        # ~0.8 us each. A subclass of an event (a plugin's) takes the ``match``.
        kind = type(event)
        if kind is TextDelta:  # most events
            self.text.append(event.text)  # type: ignore[union-attr]
        elif kind is ModelUsed:
            self.model_used = event.name  # type: ignore[union-attr]
        elif kind is Usage:
            self.usage = event  # type: ignore[assignment]
        elif kind is Finish:
            self.finish = event.reason  # type: ignore[union-attr]
            self.stop_sequence = event.stop_sequence  # type: ignore[union-attr]
        elif kind is ReasoningDelta:
            self.reasoning.append(event.text)  # type: ignore[union-attr]
        else:
            self._add_other(event)

    def _add_other(self, event: ev.ChatEvent) -> None:
        match event:
            case ev.TextDelta(text=text):
                self.text.append(text)
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
            case ev.Finish(reason=reason, stop_sequence=stop_sequence):
                self.finish = reason
                self.stop_sequence = stop_sequence
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

    def tool_calls(self) -> list[dict[str, Any]]:
        """The tool calls in OpenAI chat form, in index order."""
        return [self.tools[i] for i in sorted(self.tools)]

    def token_counts(self, request: ChatRequest) -> tuple[int, int, bool]:
        """(prompt tokens, completion tokens, estimated): the upstream's, else a guess."""
        if self.usage is not None:
            return self.usage.prompt_tokens, self.usage.completion_tokens, self.usage.estimated
        prompt = estimate_prompt_tokens(request)
        completion = estimate_tokens("".join(self.text) + "".join(self.reasoning))
        for call in self.tools.values():
            completion += estimate_tokens(call["function"]["name"] + call["function"]["arguments"])
        return prompt, completion, True

    def usage_dict(self, request: ChatRequest) -> dict[str, Any]:
        """Usage in OpenAI chat form (prompt/completion/total tokens)."""
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
        prompt, completion, _ = self.token_counts(request)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "estimated": True,
        }
