"""The internal event model: what a provider's ``chat`` hook yields.

Every output protocol (OpenAI chat completions today; Responses and Anthropic messages
later) is rendered from this one stream, so a provider is written once. The classes are
plain slotted dataclasses, not pydantic models: they are created per streamed chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


# The events made per chunk or per answer set their slots straight through the slots'
# descriptors: a frozen dataclass's own __init__ goes through object.__setattr__ per
# field, which made a Usage cost ~1.5 us and a Finish ~0.7 us. They stay frozen
# (assignment still raises), with the same fields, defaults, equality and repr.


@dataclass(slots=True, frozen=True, init=False)
class TextDelta:
    """The next piece of answer text."""

    text: str

    def __init__(self, text: str) -> None:
        _set_text(self, text)


@dataclass(slots=True, frozen=True, init=False)
class ReasoningDelta:
    """The next piece of the model's visible reasoning ("thinking")."""

    text: str

    def __init__(self, text: str) -> None:
        _set_reasoning(self, text)


_set_text = TextDelta.__dict__["text"].__set__
_set_reasoning = ReasoningDelta.__dict__["text"].__set__


@dataclass(slots=True, frozen=True, init=False)
class ToolCallDelta:
    """A piece of a tool call. The first piece of a call carries ``id`` and ``name``;
    later pieces with the same ``index`` append to ``arguments``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def __init__(
        self, index: int, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        _tool_slots[0](self, index)
        _tool_slots[1](self, id)
        _tool_slots[2](self, name)
        _tool_slots[3](self, arguments)


@dataclass(slots=True, frozen=True)
class Media:
    """An image, audio or video the provider produced. Give ``url`` or ``data``."""

    kind: Literal["image", "audio", "video"]
    url: str | None = None
    data: bytes | None = None
    mime_type: str | None = None
    alt: str | None = None
    thumbnail_url: str | None = None


@dataclass(slots=True, frozen=True)
class Citation:
    """A source the answer is based on."""

    url: str
    title: str | None = None


@dataclass(slots=True, frozen=True, init=False)
class Usage:
    """Token counts reported by the upstream (``estimated`` when the kernel guessed)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int | None = None
    estimated: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        total_tokens: int | None = None,
        estimated: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        set_prompt, set_completion, set_total, set_estimated, set_details = _usage_slots
        set_prompt(self, prompt_tokens)
        set_completion(self, completion_tokens)
        set_total(self, total_tokens)
        set_estimated(self, estimated)
        set_details(self, {} if details is None else details)

    @property
    def total(self) -> int:
        if self.total_tokens is not None:
            return self.total_tokens
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True, frozen=True, init=False)
class ModelUsed:
    """The model the upstream says actually answered (may differ from the one asked)."""

    name: str

    def __init__(self, name: str) -> None:
        _set_name(self, name)


@dataclass(slots=True, frozen=True)
class ConversationState:
    """Provider state to keep for the next turn of this conversation (JSON-serialisable)."""

    data: dict[str, Any]


@dataclass(slots=True, frozen=True, init=False)
class Finish:
    """The answer is complete. Optional: the kernel finishes with ``stop`` (or
    ``tool_calls`` when tool calls were seen) if a provider just ends its iterator."""

    reason: FinishReason = "stop"
    # The stop sequence that ended the answer, when the kernel cut it there (stops.py).
    stop_sequence: str | None = None

    def __init__(self, reason: FinishReason = "stop", stop_sequence: str | None = None) -> None:
        _set_reason(self, reason)
        _set_stop_sequence(self, stop_sequence)


def _setters(cls: type, *names: str) -> tuple[Any, ...]:
    """The slot descriptors' setters of a frozen slotted dataclass's fields."""
    return tuple(cls.__dict__[name].__set__ for name in names)


_tool_slots = _setters(ToolCallDelta, "index", "id", "name", "arguments")
_usage_slots = _setters(
    Usage, "prompt_tokens", "completion_tokens", "total_tokens", "estimated", "details"
)
_set_name = ModelUsed.__dict__["name"].__set__
_set_reason = Finish.__dict__["reason"].__set__
_set_stop_sequence = Finish.__dict__["stop_sequence"].__set__


ChatEvent = (
    TextDelta
    | ReasoningDelta
    | ToolCallDelta
    | Media
    | Citation
    | Usage
    | ModelUsed
    | ConversationState
    | Finish
)
# What ``chat`` yields: one event, or a list of the events that arrived together (one
# upstream read). The gateway sends each item to the client in one write, so a provider
# that parses several events per read should yield them as a list.
ChatItem = ChatEvent | list[ChatEvent]


def answers(event: ChatEvent) -> bool:
    """Whether an event is part of the answer itself: text or reasoning that is not only
    blanks, a tool call or media. Usage, the model used, state, citations and the finish
    are not: an answer made only of those (and blanks) is empty. (The kernel's failover
    and its probes both wait for the first such event.)"""
    # By exact type first (every request asks it of its first events, and a usual
    # answer opens with a ModelUsed): an isinstance() that fails walks its tuple
    # through __instancecheck__, ~4x a type compare. A subclass takes the isinstance.
    kind = type(event)
    if kind in NOT_ANSWERS:
        return False
    if (
        kind is TextDelta
        or kind is ReasoningDelta
        or isinstance(event, (TextDelta, ReasoningDelta))
    ):
        text = event.text  # type: ignore[union-attr]
        return text != "" and not text.isspace()
    return isinstance(event, (ToolCallDelta, Media))


# The event types that are never a part of the answer, exactly (not their subclasses).
NOT_ANSWERS = frozenset({Usage, ModelUsed, ConversationState, Finish, Citation})
