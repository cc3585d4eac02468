"""A Responses stream's text deltas written a read at a time (``ResponseStream.splice_texts``,
called by the write loop with each read's run of text deltas) are the bytes ``render``
gives one delta at a time: same events, same sequence numbers, whatever the texts hold."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from g4f_server import events as ev
from g4f_server.protocols.responses.frame import Frame
from g4f_server.protocols.responses.render import ResponseStream
from g4f_server.protocols.responses.request import ResponsesRequest, input_messages
from tests.fake_providers import Batched
from tests.protocols.test_stream_splice import ODD


def _renderer() -> ResponseStream:
    random.seed(29)  # the same item ids in both renderers
    request = ResponsesRequest.model_validate({"model": "m-1", "input": "hi", "stream": True})
    plan = request.tool_plan()
    chat = request.to_chat(input_messages(request.input_items(), plan), plan)
    return ResponseStream(Frame(request, "resp_0123", "m-1", "prov"), chat, plan)


def _one_by_one(batches: list[list[ev.ChatEvent]]) -> bytes:
    renderer = _renderer()
    out = [renderer.start()]
    for event in (event for batch in batches for event in batch):
        out.append(renderer.render(event) or b"")
    return b"".join(out)


def _by_runs(batches: list[list[ev.ChatEvent]]) -> bytes:
    """As streaming.relay drives it: a run of text deltas gathered, any other event
    rendered after the run before it."""
    renderer = _renderer()
    out, texts = [renderer.start()], []
    for batch in batches:
        for event in batch:
            if type(event) is ev.TextDelta:
                if event.text:
                    texts.append(event.text)
                continue
            if texts:
                renderer.splice_texts(out, texts, b"", b"")
            out.append(renderer.render(event) or b"")
        if texts:
            renderer.splice_texts(out, texts, b"", b"")
    return b"".join(out)


TEXTS = [ev.TextDelta(text) for text in ODD]
BATCHES = {
    "odd texts in one read": [TEXTS],
    "one delta a read": [[ev.TextDelta("a")], [ev.TextDelta("b")], [ev.TextDelta("")]],
    "runs broken by other events": [
        [ev.TextDelta("a"), ev.TextDelta("b"), ev.ModelUsed("other-2"), ev.TextDelta("c")],
        [ev.ReasoningDelta("think"), ev.TextDelta('"d"'), ev.TextDelta("e")],
        [ev.Citation("https://a.example/x", "A"), ev.TextDelta("f"), ev.TextDelta("g")],
        [ev.ToolCallDelta(0, id="call_1", name="f", arguments="{}"), ev.TextDelta("h")],
    ],
    "past the table of encoded numbers": [
        [ev.TextDelta(f"t{i}") for i in range(500)],
        [ev.TextDelta(f"u{i}") for i in range(30)],
        [ev.TextDelta("v")],
    ],
}


@pytest.mark.parametrize("case", list(BATCHES))
def test_runs_equal_the_deltas_one_by_one(case: str) -> None:
    assert _by_runs(BATCHES[case]) == _one_by_one(BATCHES[case])


def test_a_text_that_cannot_be_encoded_fails_where_render_fails() -> None:
    batch = [ev.TextDelta("ok"), ev.TextDelta("fine"), ev.TextDelta("\ud800"), ev.TextDelta("x")]
    one = _renderer()
    one_lines = [one.start()]
    with pytest.raises(TypeError):
        for event in batch:
            one_lines.append(one.render(event) or b"")
    runs = _renderer()
    run_lines = [runs.start()]
    with pytest.raises(TypeError):
        runs.splice_texts(run_lines, [e.text for e in batch], b"", b"")
    assert b"".join(run_lines) == b"".join(one_lines)
    assert runs._seq == one._seq  # the failure event after it is numbered the same


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(b.split(b"\ndata: ", 1)[1]) for b in raw.split(b"\n\n") if b]


async def test_through_the_kernel(make_client: Any) -> None:
    batches = [TEXTS, [ev.TextDelta("a"), ev.ModelUsed("other-2"), ev.TextDelta("b")]]
    client = await make_client(Batched(items=batches))
    body = {"model": "batch-1", "input": "hi", "stream": True, "store": False}
    resp = await client.post("/v1/responses", json=body)
    assert resp.status == 200
    events = _events(await resp.read())
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == [*(t for t in ODD if t), "a", "b"]
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output_text"] == "".join(deltas)


async def test_a_text_that_cannot_be_encoded_fails_the_stream(make_client: Any) -> None:
    batches = [[ev.TextDelta("ok"), ev.TextDelta("fine"), ev.TextDelta("\ud800")]]
    client = await make_client(Batched(items=batches))
    body = {"model": "batch-1", "input": "hi", "stream": True, "store": False}
    resp = await client.post("/v1/responses", json=body)
    events = _events(await resp.read())
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["ok", "fine"]
    assert events[-1]["type"] == "response.failed"
