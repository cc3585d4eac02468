"""Transcript.add: every event kind lands where the renderers read it, by exact type or,
for a plugin's subclass of an event, like its base class."""

from __future__ import annotations

from dataclasses import dataclass

from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript


def _answer(*events: ev.ChatEvent) -> Transcript:
    transcript = Transcript()
    for event in events:
        transcript.add(event)
    return transcript


def test_each_event_kind_is_recorded() -> None:
    usage = ev.Usage(3, 4)
    citation = ev.Citation("https://example.invalid/a", "A")
    t = _answer(
        ev.ModelUsed("m-2"),
        ev.ReasoningDelta("hm. "),
        ev.TextDelta("Hello"),
        ev.TextDelta(" world"),
        ev.ToolCallDelta(0, "call_1", "f", '{"a"'),
        ev.ToolCallDelta(0, arguments=": 1}"),
        citation,
        usage,
        ev.ConversationState({"turn": 1}),
        ev.Media("image", url="https://example.invalid/i.png"),
        ev.Finish("length", "STOP"),
    )
    assert t.model_used == "m-2"
    assert t.reasoning == ["hm. "]
    assert "".join(t.text) == "Hello world\n![image](https://example.invalid/i.png)\n"
    assert t.tool_calls() == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assert t.citations == [citation]
    assert t.usage is usage
    assert t.state == {"turn": 1}
    assert (t.finish, t.stop_sequence) == ("length", "STOP")


@dataclass(slots=True, frozen=True, init=False)
class _Text(ev.TextDelta):
    """A plugin's own text event (a subclass)."""


@dataclass(slots=True, frozen=True)
class _Finish(ev.Finish):
    pass


def test_a_subclass_of_an_event_counts_as_its_base() -> None:
    t = _answer(_Text("sub"), ev.TextDelta("class"), _Finish("content_filter"))
    assert t.text == ["sub", "class"]
    assert t.finish == "content_filter"
