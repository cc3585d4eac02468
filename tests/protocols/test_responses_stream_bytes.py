"""A Responses stream's bytes (store: false) equal the dict-encoding path's, byte for byte:
the opening's response is the frame encoded whole, and the end's response is the final
response object (``finished``: what the store and the WebSocket mode keep) encoded whole,
whichever way the renderer builds them. Each case runs the same events through two
renderers, one whose final object was built first (as ``keep`` does for a stored response)
and one that was never asked for it (HTTP, store: false)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols.responses.frame import Frame, response_frame
from g4f_server.protocols.responses.render import (
    ResponseStream,
    final_json,
    finished,
    output_items,
)
from g4f_server.protocols.responses.request import ResponsesRequest, input_messages
from g4f_server.web.jsonio import dumps

PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
READ = {
    "type": "function",
    "name": "read_file",
    "parameters": {"type": "object", "properties": {'\u0000path"': {"type": "string"}}},
}
# Client-chosen keys and values that hold what a split of the encoded frame could trip
# on: NUL, quotes, braces, the names of the response's own fields.
ODD = {
    "status\u0000": "\u0000",
    '"usage":null': "},{",
    "model": '"output":[]',
    "completed_at": "\u0000\u0000",
}
# A schema echoed in the frame's ``text`` holding the frame's own fields as the final
# object's splice looks for them (ResponseStream.end).
SPLIT = {
    "properties": ODD,
    "completed_at": None,
    "status": "in_progress",
    "error": None,
    "incomplete_details": None,
    "output": [],
    "parallel_tool_calls": True,
    "usage": None,
    "user": "u",
}

TEXT = [ev.TextDelta("Hel"), ev.TextDelta('lo "w"\n\u00e9\u0000'), ev.Finish("stop")]
CASES: dict[str, tuple[dict[str, Any], list[ev.ChatEvent], int]] = {
    # name: (request fields, events, how many of them arrive in the first batch)
    "completed": ({}, [*TEXT, ev.Usage(5, 7)], 1),
    "completed, estimated usage": ({}, TEXT, 1),
    "upstream usage marked estimated": ({}, [*TEXT, ev.Usage(3, 4, estimated=True)], 1),
    "incomplete: length": ({}, [ev.TextDelta("cut"), ev.Finish("length")], 1),
    "incomplete: content filter": ({}, [ev.TextDelta("no"), ev.Finish("content_filter")], 2),
    "model named first": ({}, [ev.ModelUsed("named-1"), *TEXT], 2),
    "model changed mid-stream": ({}, [ev.TextDelta("a"), ev.ModelUsed("other-2"), *TEXT], 1),
    "model named empty": ({}, [ev.TextDelta("a"), ev.ModelUsed(""), ev.TextDelta("b")], 1),
    "no output at all": ({}, [], 0),
    "empty text only": ({}, [ev.TextDelta(""), ev.Finish("stop")], 1),
    "tool calls": (
        {"tools": [READ, PATCH], "tool_choice": "auto", "parallel_tool_calls": False},
        [
            ev.TextDelta("Let me look."),
            ev.ToolCallDelta(0, id="call_1", name="read_file", arguments='{"pa'),
            ev.ToolCallDelta(0, arguments='th": "a"}'),
            ev.ToolCallDelta(1, id="call_2", name="apply_patch", arguments='{"input": "x"}'),
            ev.ToolCallDelta(0, arguments=" "),  # a closed call's late arguments
            ev.Finish("tool_calls"),
        ],
        2,
    ),
    "messages between calls, reasoning, citations, media": (
        {"tools": [READ], "reasoning": {"effort": "high", "summary": "auto"}},
        [
            ev.ReasoningDelta("think"),
            ev.ReasoningDelta(" more"),
            ev.TextDelta("one"),
            ev.Citation("https://a.example/x", "A"),
            ev.TextDelta(" two"),
            ev.ToolCallDelta(0, id=None, name="read_file", arguments="{}"),
            ev.Citation("https://b.example/y"),
            ev.Media("image", url="https://m.example/i.png", mime_type="image/png", alt="pic"),
            ev.TextDelta("three"),
            ev.Usage(9, 11, total_tokens=20),
        ],
        3,
    ),
    "everything echoed": (
        {
            "instructions": 'Be "brief"\u0000',
            "max_output_tokens": 64,
            "max_tool_calls": 2,
            "temperature": 0.25,
            "top_p": 0.5,
            "user": "u\u0000",
            "safety_identifier": "s",
            "prompt_cache_key": "k",
            "service_tier": "flex",
            "presence_penalty": 0.5,
            "frequency_penalty": -0.5,
            "top_logprobs": 2,
            "tool_choice": {"type": "function", "name": "read_file"},
            "truncation": "auto",
            "metadata": ODD,
            "text": {
                "format": {"type": "json_schema", "name": "o", "schema": SPLIT},
                "verbosity": "low",
            },
            "tools": [READ],
        },
        [*TEXT, ev.Usage(1, 2)],
        1,
    ),
}


# The cases whose answer is one text message: their final object is spliced from the
# opening's bytes when nothing asked for it first (the rest build and encode it).
SPLICED = {
    "completed",
    "completed, estimated usage",
    "upstream usage marked estimated",
    "incomplete: length",
    "incomplete: content filter",
    "model named first",
    "everything echoed",
}


def _run(
    fields: dict[str, Any], events: list[ev.ChatEvent], first: int, *, kept: bool
) -> tuple[bytes, list[bytes], dict[str, Any], dict[str, Any], Transcript]:
    """The stream's opening, its other chunks and the frame as the opening saw it, as
    ``streaming.relay`` drives a renderer; with ``kept`` the final object is built before
    the end (a stored response's ``keep``)."""
    random.seed(29)  # the same item ids in both runs
    request = ResponsesRequest.model_validate(
        {"model": "m-1", "input": "hi", "stream": True, "store": False, **fields}
    )
    plan = request.tool_plan()
    chat = request.to_chat(input_messages(request.input_items(), plan), plan)
    frame = Frame(request, "resp_0123", "m-1", "prov")
    renderer = ResponseStream(frame, chat, plan)
    for event in events[:first]:
        if isinstance(event, ev.ModelUsed):
            renderer.render(event)
    # The frame as a dict, built apart (reading ``frame.dict()`` would build the one the
    # renderer encodes, where a plain request's is encoded from pieces).
    seen = response_frame(request, "resp_0123", frame.model, "prov", frame.created)
    opening = renderer.start()
    chunks, transcript = [], Transcript()
    for event in events:
        transcript.add(event)
        if (line := renderer.render(event)) is not None:
            chunks.append(line)
    final = renderer.final(transcript) if kept else {}
    chunks.append(renderer.end(transcript))
    _built.append(renderer._final is not None)
    return opening, chunks, seen, final, transcript


_built: list[bool] = []  # for each _run, whether the renderer built the final object


@pytest.mark.parametrize("case", list(CASES))
def test_stream_bytes_equal_the_encoded_objects(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_765_000_000.75)  # one second for both runs
    fields, events, first = CASES[case]
    opening, chunks, seen, _, _ = _run(fields, events, first, kept=False)
    k_opening, k_chunks, _, final, _ = _run(fields, events, first, kept=True)
    # The opening: the frame encoded whole, twice.
    response = dumps(seen)
    assert opening == (
        b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
        b'"response":' + response + b"}\n\n"
        b'event: response.in_progress\ndata: {"type":"response.in_progress",'
        b'"sequence_number":1,"response":' + response + b"}\n\n"
    )
    assert opening == k_opening
    # The end: the final object encoded whole, whether or not it was built first.
    assert chunks == k_chunks
    end = chunks[-1]
    kind = b"response.completed" if final["status"] == "completed" else b"response.incomplete"
    tail = b'event: %b\ndata: {"type":"%b","sequence_number":' % (kind, kind)
    assert tail in end
    event = end.rpartition(tail)[2]
    assert event.endswith(b',"response":' + dumps(final) + b"}\n\n")
    assert final["completed_at"] == 1_765_000_000
    # Without ``keep``, a one-message answer's end never built the object it encodes.
    assert _built[-2:] == [case not in SPLICED, True]


def test_the_final_object_is_finished_of_the_frame() -> None:
    """The kept object is ``finished`` of the frame and the output (the non-streamed
    path's function), so the bytes above are the dict-encoding path's."""
    fields, events, first = CASES["tool calls"]
    _, _, _, final, transcript = _run(fields, events, first, kept=True)
    request = ResponsesRequest.model_validate({"model": "m-1", "input": "hi", **fields})
    plan = request.tool_plan()
    chat = request.to_chat(input_messages(request.input_items(), plan), plan)
    frame = {k: v for k, v in final.items() if k != "output_text"}
    again = finished(frame, final["output"], transcript, chat)
    again["completed_at"] = final["completed_at"]
    assert again == final


@pytest.mark.parametrize("case", list(CASES))
def test_a_json_answer_equals_the_encoded_object(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-streamed answer's body (``final_json``, spliced when it is one text message)
    is the final object ``finished`` builds, encoded; the other answers are not spliced."""
    monkeypatch.setattr(time, "time", lambda: 1_765_000_000.75)
    fields, events, _ = CASES[case]
    request = ResponsesRequest.model_validate({"model": "m-1", "input": "hi", **fields})
    plan = request.tool_plan()
    chat = request.to_chat(input_messages(request.input_items(), plan), plan)
    frame = Frame(request, "resp_0123", "m-1", "prov")
    transcript = Transcript()
    for event in events:
        transcript.add(event)
    random.seed(29)
    spliced = final_json(frame, transcript, chat)
    random.seed(29)
    built_frame = response_frame(request, "resp_0123", "m-1", "prov", frame.created)
    built = dumps(finished(built_frame, output_items(transcript, plan), transcript, chat))
    one_message = {"no output at all", "empty text only", "model named empty"}
    if case in (SPLICED | one_message) - {"model named first"}:  # the frame's model
        assert spliced == built
    else:
        assert spliced is None
