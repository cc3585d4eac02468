"""A Messages stream's start and end are filled-in templates: the same bytes as the events
built as dicts and dumped, whatever the model, provider, stop sequence and counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript, estimate_prompt_tokens
from g4f_server.protocols.anthropic.render import MessageStream
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps

CHAT = ChatRequest.model_validate(
    {"model": "m", "messages": [{"role": "user", "content": "Say twenty words, \u00e9 \U0001f600"}]}
)
NAMES = ["openai", 'a "quoted" \\ model', "mod\u00e8le \u4e2d\u6587 \U0001f600", "tab\tnew\nline"]


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"


@pytest.mark.parametrize("name", NAMES)
def test_start_is_the_dumped_message_start(name: str) -> None:
    stream = MessageStream(f"msg_{name}", name, name[::-1], CHAT)
    message = {
        "id": f"msg_{name}",
        "type": "message",
        "role": "assistant",
        "model": name,
        "provider": name[::-1],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": estimate_prompt_tokens(CHAT), "output_tokens": 0},
    }
    assert stream.start() == _sse("message_start", {"type": "message_start", "message": message})


def _transcript(finish: ev.Finish | None, usage: ev.Usage | None) -> Transcript:
    transcript = Transcript()
    transcript.add(ev.TextDelta("Hello there"))
    if usage is not None:
        transcript.add(usage)
    if finish is not None:  # (None: the upstream named no finish)
        transcript.add(finish)
    return transcript


FINISHES = [
    None,
    ev.Finish("stop"),
    ev.Finish("length"),
    ev.Finish("content_filter"),
    ev.Finish("tool_calls"),
    ev.Finish("something new"),
    ev.Finish("stop", stop_sequence='\n\nUser: "x" \u00e9'),
    ev.Finish("stop", stop_sequence="END"),
]
USAGES = [None, ev.Usage(12, 34), ev.Usage(0, 0), ev.Usage(7.0, 3), ev.Usage(True, 2)]  # type: ignore[arg-type]


@pytest.mark.parametrize("finish", FINISHES)
@pytest.mark.parametrize("usage", USAGES)
def test_end_is_the_dumped_message_delta_and_stop(
    finish: ev.Finish | None, usage: ev.Usage | None
) -> None:
    stream = MessageStream("msg_1", "m", "p", CHAT)
    stream.render(ev.TextDelta("Hello there"))  # a text block is open
    transcript = _transcript(finish, usage)
    prompt, completion, _ = transcript.token_counts(CHAT)
    reason = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
    reason |= {"tool_calls": "tool_use"}
    expected_reason = reason.get(finish.reason if finish else "stop", "end_turn")
    sequence = finish.stop_sequence if finish else None
    if sequence is not None:
        expected_reason = "stop_sequence"
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": expected_reason, "stop_sequence": sequence},
        "usage": {"input_tokens": prompt, "output_tokens": completion},
    }
    expected = (
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        + _sse("message_delta", delta)
        + _sse("message_stop", {"type": "message_stop"})
    )
    end = stream.end(transcript)
    assert end == expected
    # and a client reads what it always read
    payload = json.loads(end.split(b"data: ")[2].split(b"\n")[0])
    assert payload["usage"] == {"input_tokens": prompt, "output_tokens": completion}


def test_first_text_block_and_the_events_with_no_event_of_their_own() -> None:
    stream = MessageStream("msg_1", "m", "p", CHAT)
    for event in (ev.ModelUsed("other"), ev.Usage(1, 2), ev.Finish("stop")):
        assert stream.render(event) is None
    first = stream.render(ev.TextDelta('Hi "you"'))
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    delta = {"type": "text_delta", "text": 'Hi "you"'}
    assert first == (
        _sse("content_block_start", start)
        + _sse("ping", {"type": "ping"})
        + _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    )
    second = stream.render(ev.TextDelta("\u00e9"))
    delta = {"type": "text_delta", "text": "\u00e9"}
    assert second == _sse(
        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    )
    # a thinking block after it stops the text block and opens block 1, with no second ping
    thinking = stream.render(ev.ReasoningDelta("hm"))
    assert thinking is not None
    assert thinking.startswith(
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    )
    assert b"ping" not in thinking and b'"index":1' in thinking
