"""The events keep their dataclass contract with their own fast __init__s: the same
fields, defaults, keywords, equality and repr, and assignment still raises."""

from __future__ import annotations

import dataclasses

import pytest

from g4f_server import events as ev


def test_defaults_keywords_and_equality() -> None:
    assert ev.Finish() == ev.Finish("stop", None) == ev.Finish(reason="stop")
    assert ev.Finish("length", stop_sequence="END").stop_sequence == "END"
    assert ev.ToolCallDelta(2) == ev.ToolCallDelta(index=2, id=None, name=None, arguments="")
    assert ev.ToolCallDelta(0, "c", "f", "{}") != ev.ToolCallDelta(0, "c", "f", "")
    usage = ev.Usage(prompt_tokens=3, completion_tokens=4)
    assert (usage.total, usage.estimated, usage.details) == (7, False, {})
    assert ev.Usage(1, 2).details is not ev.Usage(1, 2).details  # a dict of its own
    assert ev.Usage(1, 2, 5, True, {"x": 1}) == ev.Usage(1, 2, total_tokens=5, estimated=True,
                                                         details={"x": 1})  # fmt: skip
    assert repr(ev.ModelUsed("m")) == "ModelUsed(name='m')"
    assert [f.name for f in dataclasses.fields(ev.Usage)] == [
        "prompt_tokens", "completion_tokens", "total_tokens", "estimated", "details",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "event",
    [ev.TextDelta("a"), ev.ModelUsed("m"), ev.Finish(), ev.Usage(1, 2), ev.ToolCallDelta(0)],
)
def test_events_stay_frozen(event: object) -> None:
    name = dataclasses.fields(event)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, name, None)
