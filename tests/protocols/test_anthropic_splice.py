"""Messages' spliced bytes are the bytes of the events rendered one at a time and of the
answer built as a dict and dumped: a read's text deltas (``MessageStream.splice_texts``,
as ``streaming.relay`` hands them over) against ``render`` per event, and the usual JSON
answer (``message_json``) against ``message_body`` dumped."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols.anthropic.render import (
    MessageStream,
    message_body,
    message_json,
)
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps

CHAT = ChatRequest.model_validate(
    {"model": "m", "messages": [{"role": "user", "content": "Say twenty words, \u00e9"}]}
)
TEXTS = ["tok ", 'a "quoted" \\ text', "\u00e9\u4e2d\U0001f600", "nul\0byte", "", "\\u0000", "x"]
OTHERS: list[ev.ChatEvent] = [
    ev.ReasoningDelta("thinking..."),
    ev.ToolCallDelta(0, id="call_1", name="get", arguments='{"a":'),
    ev.ToolCallDelta(0, arguments="1}"),
    ev.Media("image", url="https://example.test/a.png", alt="a [chart]"),
    ev.Citation("https://example.test/source", "Source"),
    ev.ModelUsed("other"),
    ev.Usage(3, 4),
    ev.Finish("stop"),
]


def _rendered(events: list[ev.ChatEvent]) -> bytes:
    random.seed(29)  # a tool call without an id gets a random one: the same on both sides
    stream = MessageStream("msg_1", "m", "p", CHAT)
    return b"".join(line for e in events if (line := stream.render(e)) is not None)


def _spliced(batches: list[list[ev.ChatEvent]]) -> bytes:
    """What streaming.relay writes: a batch's text deltas gathered and handed to
    ``splice_texts`` before any other event and at the batch's end; the rest rendered."""
    random.seed(29)
    stream = MessageStream("msg_1", "m", "p", CHAT)
    lines: list[bytes] = []
    texts: list[str] = []
    before, after = stream.text_parts
    for batch in batches:
        for event in batch:
            if type(event) is ev.TextDelta:
                if event.text:
                    texts.append(event.text)
                continue
            if texts:
                stream.splice_texts(lines, texts, before, after)
            if (line := stream.render(event)) is not None:
                lines.append(line)
        if texts:
            stream.splice_texts(lines, texts, before, after)
    return b"".join(lines)


def _sequences() -> list[list[ev.ChatEvent]]:
    out: list[list[ev.ChatEvent]] = []
    texts = [ev.TextDelta(t) for t in TEXTS]
    out.append(texts)
    for other in OTHERS:  # another event before, between and after runs of text
        out.append([other, *texts[:3], other, *texts[3:]])
        out.append([*texts[:2], other, other, *texts[2:], other])
    for a, b in itertools.combinations(OTHERS[:5], 2):
        out.append([texts[0], a, texts[1], texts[2], b, texts[3], a])
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_spliced_text_runs_are_the_rendered_events(size: int) -> None:
    for events in _sequences():
        batches = [events[i : i + size] for i in range(0, len(events), size)]
        assert _spliced(batches) == _rendered(events), (size, events)


def test_a_text_json_cannot_encode_fails_after_the_deltas_before_it() -> None:
    bad = "lone \ud800 surrogate"
    for texts in (["a", "b", bad, "c"], [bad], ["a", bad], ["a", "b\\", bad]):
        stream = MessageStream("msg_1", "m", "p", CHAT)
        lines: list[bytes] = []
        with pytest.raises(TypeError):
            stream.splice_texts(lines, list(texts), b"", b"")
        one = MessageStream("msg_1", "m", "p", CHAT)
        expected: list[bytes] = []
        with pytest.raises(TypeError):
            for text in texts:
                expected.append(one.render(ev.TextDelta(text)) or b"")
        assert b"".join(lines) == b"".join(expected)


def test_a_new_message_id_is_formatted_in_place() -> None:
    stream = MessageStream(None, "m", "p", CHAT)
    assert re.fullmatch(r"msg_[0-9a-f]{24}", stream.id)
    given = MessageStream(stream.id, "m", "p", CHAT)
    assert stream.start() == given.start()


def _transcript(events: list[ev.ChatEvent]) -> Transcript:
    transcript = Transcript()
    for event in events:
        transcript.add(event)
    return transcript


USAGES: list[ev.ChatEvent | None] = [
    None,  # estimated
    ev.Usage(12, 34),
    ev.Usage(0, 0),
    ev.Usage(7.0, 3),  # type: ignore[arg-type]
    ev.Usage(True, 2),  # type: ignore[arg-type]
    ev.Usage(5, 6, estimated=True),
]
FINISHES = [
    ev.Finish("stop"),
    ev.Finish("length"),
    ev.Finish("content_filter"),
    ev.Finish("tool_calls"),
    ev.Finish("something new"),
    ev.Finish("stop", stop_sequence='\n\nUser: "x" \u00e9'),
]
BODIES: list[list[ev.ChatEvent]] = [
    [],
    [ev.TextDelta(t) for t in TEXTS],
    [ev.ModelUsed('a "model" \u00e9'), ev.TextDelta("Hello")],
    [ev.ReasoningDelta("hm"), ev.TextDelta("Hi")],
    [ev.ToolCallDelta(0, id="call_1", name="get", arguments="{}")],
    [ev.TextDelta("See"), ev.Citation("https://example.test", None)],
    [ev.Media("image", url="https://example.test/a.png")],
]


@pytest.mark.parametrize("usage", USAGES)
@pytest.mark.parametrize("finish", FINISHES)
def test_the_json_answer_is_the_dumped_message(
    usage: ev.ChatEvent | None, finish: ev.ChatEvent
) -> None:
    for events in BODIES:
        extra = [] if usage is None else [usage]
        transcript = _transcript([*events, *extra, finish])
        for model, provider in (("m", "p"), ('mod\u00e8le \\ "q"', "tab\tprovider")):
            body = message_body(
                transcript, CHAT, message_id="msg_given", model=model, provider=provider
            )
            given = message_json(
                transcript, CHAT, message_id="msg_given", model=model, provider=provider
            )
            assert given == dumps(body)
            new = message_json(transcript, CHAT, model=model, provider=provider)
            ident = re.match(rb'\{"id":"(msg_[0-9a-f]{24})"', new)
            assert ident is not None
            body["id"] = ident.group(1).decode()
            if body["content"] and body["content"][-1]["type"] == "tool_use":
                continue  # a tool call without an id gets a new one too; compared above
            assert new == dumps(body)


@pytest.mark.parametrize("usage", [[], [ev.Usage(1, 2)]])
def test_a_text_that_cannot_be_encoded_is_the_same_error(usage: list[ev.ChatEvent]) -> None:
    # (counted without usage: estimating its tokens fails first, on both sides)
    transcript = _transcript([ev.TextDelta("lone \ud800"), *usage, ev.Finish("stop")])
    with pytest.raises((TypeError, ValueError)) as old:
        dumps(message_body(transcript, CHAT, message_id="msg_1", model="m", provider="p"))
    with pytest.raises((TypeError, ValueError)) as new:
        message_json(transcript, CHAT, model="m", provider="p")
    assert type(new.value) is type(old.value)
