"""The kernel's rule: an answer with no text, tool call, media or reasoning is no success.

It is a provider error (502 ``empty_answer``) and, since nothing has reached the client
yet, the next provider is tried, for every protocol, streamed or not."""

from __future__ import annotations

from typing import Any

import pytest

from g4f_server import events
from tests.fake_providers import Batched

USER = [{"role": "user", "content": "hello there"}]

# Answers made only of what is not an answer: bookkeeping events, empty text.
EMPTY = {
    "nothing": [],
    "finish only": [events.Finish("stop")],
    "empty text": [[events.TextDelta(""), events.ReasoningDelta("")], events.Finish("stop")],
    "blanks": [events.TextDelta("\n\n"), [events.ReasoningDelta(" "), events.TextDelta(" \t")]],
    "bookkeeping": [
        events.ModelUsed("other"),
        [events.Usage(3, 0), events.ConversationState({"turn": 1})],
        events.Citation("https://example.org"),
        events.Finish("stop"),
    ],
}


def chat_body(streamed: bool) -> dict[str, Any]:
    return {"model": "batch-1", "messages": USER, "stream": streamed}


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("items", EMPTY.values(), ids=EMPTY.keys())
async def test_an_empty_answer_is_a_502(make_client: Any, items: list[Any], streamed: bool) -> None:
    client = await make_client(Batched(items=items))
    resp = await client.post("/v1/chat/completions", json=chat_body(streamed))
    assert resp.status == 502
    assert resp.content_type == "application/json"  # not a stream: nothing was sent yet
    error = (await resp.json())["error"]
    assert error["code"] == "empty_answer"
    assert error["type"] == "provider_error"
    assert "Batcher" in error["message"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_empty_answer_fails_over_to_the_next_provider(
    make_client: Any, streamed: bool
) -> None:
    empty = Batched(items=EMPTY["bookkeeping"], name="A", priority=1)
    good = Batched(items=[[events.TextDelta("fine")]], name="B", priority=2)
    client = await make_client(empty, good)
    resp = await client.post("/v1/chat/completions", json=chat_body(streamed))
    assert resp.status == 200
    assert resp.headers["X-G4F-Provider"] == "B"
    assert resp.headers["X-G4F-Attempts"] == "2"
    assert "fine" in await resp.text()


async def test_all_providers_empty_names_each(make_client: Any) -> None:
    a = Batched(items=[], name="A", priority=1)
    b = Batched(items=[events.Finish("stop")], name="B", priority=2)
    client = await make_client(a, b)
    resp = await client.post("/v1/chat/completions", json=chat_body(False))
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["code"] == "empty_answer"
    assert "'A'" in error["message"] and "'B'" in error["message"]


@pytest.mark.parametrize(
    "answer",
    [
        [events.ReasoningDelta("thinking only")],
        [events.ToolCallDelta(0, id="call_1", name="f", arguments="{}")],
        [events.Media("image", url="https://example.org/a.png")],
    ],
    ids=["reasoning", "tool call", "media"],
)
async def test_any_part_of_an_answer_is_an_answer(make_client: Any, answer: list[Any]) -> None:
    client = await make_client(Batched(items=[events.Usage(1, 1), answer]))
    resp = await client.post("/v1/chat/completions", json=chat_body(False))
    assert resp.status == 200


async def test_events_before_the_first_part_are_kept(make_client: Any) -> None:
    """Held back while it was unknown whether an answer would come, not dropped."""
    items = [events.ModelUsed("batch-2"), [], events.TextDelta("\n"), [events.TextDelta("hi")]]
    client = await make_client(Batched(items=items))
    resp = await client.post("/v1/chat/completions", json=chat_body(False))
    assert resp.status == 200
    body = await resp.json()
    assert body["model"] == "batch-2"
    assert body["choices"][0]["message"]["content"] == "\nhi"


@pytest.mark.parametrize("streamed", [False, True])
async def test_the_rule_holds_for_the_responses_protocol(make_client: Any, streamed: bool) -> None:
    client = await make_client(Batched(items=[events.Finish("stop")]))
    body = {"model": "batch-1", "input": "hi", "stream": streamed}
    resp = await client.post("/v1/responses", json=body)
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "empty_answer"


class _PluginText(events.TextDelta):
    """A plugin's own subclass of an event: the rule holds for it as for its base."""


class _PluginMedia(events.Media):
    pass


# (event, an answer?, an answer a protocol without reasoning can show?)
RULE = [
    (events.TextDelta("hi"), True, True),
    (events.TextDelta(" \n"), False, False),
    (events.TextDelta(""), False, False),
    (events.ReasoningDelta("hmm"), True, False),
    (events.ReasoningDelta("  "), False, False),
    (events.ToolCallDelta(0, "c1", "f"), True, True),
    (events.Media("image", url="https://example.org/a.png"), True, True),
    (events.ModelUsed("m"), False, False),
    (events.Usage(1, 2), False, False),
    (events.Finish("stop"), False, False),
    (events.Citation("https://example.org"), False, False),
    (events.ConversationState({"turn": 1}), False, False),
    (_PluginText("hi"), True, True),
    (_PluginText(" "), False, False),
    (_PluginMedia("image", url="https://example.org/a.png"), True, True),
]


@pytest.mark.parametrize(("event", "answer", "visible"), RULE, ids=lambda v: repr(v)[:40])
def test_what_is_a_part_of_the_answer(event: Any, answer: bool, visible: bool) -> None:
    """``answers`` and ``answers_visibly`` decide by exact type first: subclasses and
    every event type still follow the rule."""
    from g4f_server.pipeline.dispatch import answers_visibly

    assert events.answers(event) is answer
    assert answers_visibly(event) is visible
