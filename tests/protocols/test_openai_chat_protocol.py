"""The chunk renderer splices deltas into a pre-encoded frame: it must equal the schema."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols.openai_chat.render import ChunkRenderer, completion_body, completion_json
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps


def parse(line: bytes | None) -> dict:
    assert line is not None and line.startswith(b"data: ") and line.endswith(b"\n\n")
    return json.loads(line[6:])


def _frame(renderer: ChunkRenderer) -> dict:
    """What every chunk of ``ChunkRenderer("chatcmpl-x", 'model "q"', "Prov")`` carries."""
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": renderer.created,
        "model": 'model "q"',
        "provider": "Prov",
    }


@pytest.mark.parametrize(
    ("event", "delta"),
    [
        (ev.TextDelta('quote " and \\ and ü'), {"content": 'quote " and \\ and ü'}),
        (ev.ReasoningDelta("hmm"), {"reasoning_content": "hmm"}),
        (
            ev.ToolCallDelta(0, id="c1", name="f", arguments="{"),
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "type": "function",
                        "id": "c1",
                        "function": {"arguments": "{", "name": "f"},
                    }
                ]
            },
        ),
        (
            ev.Citation("https://a.example", "A"),
            {
                "annotations": [
                    {
                        "type": "url_citation",
                        "url_citation": {"url": "https://a.example", "title": "A"},
                    }
                ]
            },
        ),
    ],
)
def test_rendered_chunk_matches_the_stream_schema(event: ev.ChatEvent, delta: dict) -> None:
    renderer = ChunkRenderer("chatcmpl-x", 'model "q"', "Prov")
    assert parse(renderer.render(event)) == {
        **_frame(renderer),
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
    }


@pytest.mark.parametrize("extra", [None, {"conversation_id": "c-1"}])
@pytest.mark.parametrize("reason", ["stop", "length", "tool_calls"])
def test_role_and_finish_chunks_match_the_stream_schema(reason: str, extra: dict | None) -> None:
    from g4f_server.protocols.openai_chat.render import Transcript

    renderer = ChunkRenderer("chatcmpl-x", 'model "q"', "Prov")
    frame = _frame(renderer)
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}}
    assert parse(renderer.role()) == {
        **frame,
        "choices": [{**role, "logprobs": None, "finish_reason": None}],
    }
    transcript = Transcript()
    transcript.add(ev.Finish(reason))  # type: ignore[arg-type]
    last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
    assert parse(renderer.finish(transcript, extra)) == {
        **frame,
        "choices": [last],
        **(extra or {}),
    }


def test_model_used_changes_later_chunks_and_empty_text_is_skipped() -> None:
    renderer = ChunkRenderer("chatcmpl-x", "asked", "Prov")
    assert renderer.render(ev.TextDelta("")) is None
    assert renderer.render(ev.ModelUsed("actual")) is None
    assert parse(renderer.render(ev.TextDelta("a")))["model"] == "actual"


def test_end_events_have_no_chunk_and_a_text_subclass_renders_as_text() -> None:
    from dataclasses import dataclass

    @dataclass(slots=True, frozen=True, init=False)
    class PluginText(ev.TextDelta):  # a plugin's own text event
        pass

    renderer = ChunkRenderer("chatcmpl-x", "asked", "Prov")
    for event in (ev.Usage(1, 2), ev.Finish("length"), ev.ConversationState({"a": 1})):
        assert renderer.render(event) is None
    assert renderer.render(PluginText("hi")) == renderer.render(ev.TextDelta("hi"))
    assert parse(renderer.render(PluginText("hi")))["choices"][0]["delta"] == {"content": "hi"}
    assert renderer.render(PluginText("")) is None


def test_message_dicts_are_the_messages_as_an_upstream_takes_them() -> None:
    from g4f_server.requests import ChatRequest

    request = ChatRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief", "x_vendor": {"a": 1}},
                {
                    "role": "user",
                    "name": "bob",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "function": {"name": "f"}, "x_tc": True}],
                },
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ],
        }
    )
    dicts = request.message_dicts()
    assert dicts == [m.model_dump(exclude_none=True, mode="json") for m in request.messages]
    assert dicts[0] == {"role": "system", "content": "be brief", "x_vendor": {"a": 1}}
    assert "content" not in dicts[2]  # None left out
    assert dicts[2]["tool_calls"][0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
        "x_tc": True,
    }


_ANSWERS: dict[str, tuple[list[ev.ChatEvent], dict[str, Any] | None]] = {
    # name: (events, extra): the spliced answers, then the ones encoded from the dict
    "text, upstream usage": ([ev.TextDelta('a "b"\n'), ev.Usage(9, 20), ev.Finish("stop")], None),
    "no text, no usage": ([], None),
    "model used, length": (
        [ev.ModelUsed('m"\u2028'), ev.TextDelta("\0é"), ev.Finish("length")],
        None,
    ),
    "usage total given": ([ev.TextDelta("x"), ev.Usage(1, 2, total_tokens=7)], None),
    "usage estimated": ([ev.TextDelta("x"), ev.Usage(1, 2, estimated=True)], None),
    "usage details": ([ev.Usage(1, 2, details={"prompt_tokens_details": {"cached": 1}})], None),
    "usage not ints": ([ev.Usage(True, 2.5)], None),  # type: ignore[arg-type]
    "tool call": ([ev.ToolCallDelta(0, id="c1", name="f", arguments="{}")], None),
    "reasoning": ([ev.ReasoningDelta("hm"), ev.TextDelta("a")], None),
    "citation": ([ev.TextDelta("a"), ev.Citation("https://x.invalid", None)], None),
    "conversation id": ([ev.TextDelta("a")], {"conversation_id": "c-1"}),
}


@pytest.mark.parametrize("name", list(_ANSWERS))
def test_completion_json_is_the_body_encoded(name: str) -> None:
    """The JSON answer is spliced for the usual case: the bytes must be the dict's."""
    events, extra = _ANSWERS[name]
    transcript = Transcript()
    for event in events:
        transcript.add(event)
    request = ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    fields: dict[str, Any] = {"completion_id": 'id"\u00e9', "model": "asked", "provider": 'P"\0'}
    encoded = completion_json(transcript, request, **fields, extra=extra)
    created = json.loads(encoded)["created"]
    assert abs(created - time.time()) < 5
    assert encoded == dumps(
        completion_body(transcript, request, **fields, created=created, extra=extra)
    )


_NEW_ID = re.compile(r"chatcmpl-[0-9a-f]{24}")


@pytest.mark.parametrize("name", list(_ANSWERS))
def test_completion_json_with_a_new_id_is_the_body_encoded(name: str) -> None:
    """Without an id (the route's call) the answer makes one, formatted into the bytes
    on the usual path: new_completion_id's form, and the dict's bytes with that id."""
    events, extra = _ANSWERS[name]
    transcript = Transcript()
    for event in events:
        transcript.add(event)
    request = ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    fields: dict[str, Any] = {"model": "asked", "provider": 'P"\0'}
    encoded = completion_json(transcript, request, **fields, extra=extra)
    parsed = json.loads(encoded)
    assert _NEW_ID.fullmatch(parsed["id"])
    assert completion_json(transcript, request, **fields, extra=extra) != encoded  # new each
    assert encoded == dumps(
        completion_body(
            transcript,
            request,
            **fields,
            completion_id=parsed["id"],
            created=parsed["created"],
            extra=extra,
        )
    )


def test_a_renderer_with_a_new_id_frames_every_chunk_with_it() -> None:
    renderer = ChunkRenderer(None, 'model "q"', "Prov")
    assert _NEW_ID.fullmatch(renderer.id)
    assert ChunkRenderer(None, "m", "P").id != renderer.id
    frame = {**_frame(renderer), "id": renderer.id}
    role = parse(renderer.role())
    assert role == {
        **frame,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
    }
    renderer.render(ev.ModelUsed("other"))
    transcript = Transcript()
    transcript.add(ev.Finish("length"))
    extra = {"conversation_id": "c-1"}  # the chunk built from the dict: the same id
    assert parse(renderer.finish(transcript, extra)) == {
        **frame,
        "model": "other",
        "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}],
        **extra,
    }


def test_the_named_fields_cache_is_bounded() -> None:
    from g4f_server.protocols import named

    for i in range(named.NAMED_MAX + 5):
        renderer = ChunkRenderer(None, f"m-{i}", "P")
        assert parse(renderer.role())["model"] == f"m-{i}"
        assert 0 < named.cached() <= named.NAMED_MAX
