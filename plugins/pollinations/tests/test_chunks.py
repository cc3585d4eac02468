"""The streamed-chunk reader: the typed fast path gives exactly what the full walk gives,
for the usual chunk and for every shape it hands over to the walk."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from g4f_server.events import Usage
from g4f_server.requests import ChatRequest
from g4f_server_pollinations.chat import _Answer, _usage, read_completion
from g4f_server_pollinations.chunks import decode, decode_completion

REQUEST = ChatRequest(model="openai", messages=[{"role": "user", "content": "Hi"}], stream=True)
BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "openai"}


def _choice(delta: Any, finish: Any = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}


CHUNKS = {
    "text": {**BASE, "choices": [_choice({"content": "Hello"})]},
    "role and text": {**BASE, "choices": [_choice({"role": "assistant", "content": "Hi"})]},
    "empty text": {**BASE, "choices": [_choice({"content": ""})]},
    "null text": {**BASE, "choices": [_choice({"content": None})]},
    "finish": {**BASE, "choices": [_choice({}, "stop")]},
    "finish by length": {**BASE, "choices": [_choice({"content": "x"}, "length")]},
    "unknown finish": {**BASE, "choices": [_choice({}, "weird")]},
    "no choices": {**BASE, "choices": []},
    "no model": {"choices": [_choice({"content": "a"})]},
    "filter results": {
        **BASE,
        "choices": [
            {**_choice({"content": "b"}), "content_filter_results": {"hate": {"filtered": False}}}
        ],
        "usage": None,
        "system_fingerprint": "fp_1",
    },
    "usage": {**BASE, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    "usage with details": {
        **BASE,
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "x_details": {"a": 1}},
    },
    "empty usage": {**BASE, "choices": [_choice({"content": "u"})], "usage": {}},
    "usage not an object": {**BASE, "choices": [], "usage": [3, 4]},
    "reasoning": {**BASE, "choices": [_choice({"reasoning_content": "hmm", "content": "c"})]},
    "reasoning (other name)": {**BASE, "choices": [_choice({"reasoning": "hmm"})]},
    "tool call": {
        **BASE,
        "choices": [
            _choice(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
                    ]
                }
            )
        ],
    },
    "citations": {
        **BASE,
        "citations": ["https://a.example"],
        "choices": [_choice({"content": "d"})],
    },
    "content parts": {**BASE, "choices": [_choice({"content": [{"type": "text", "text": "e"}]})]},
    "numeric model": {**BASE, "model": 4, "choices": [_choice({"content": "f"})]},
    "delta not an object": {**BASE, "choices": [_choice("g")]},
    "choice not an object": {**BASE, "choices": ["j"]},
    "choices not a list": {**BASE, "choices": {"0": _choice({"content": "k"})}},
    "not an object": ["h"],
    "error false": {**BASE, "error": False, "choices": [_choice({"content": "i"})]},
}
TYPED = {"text", "role and text", "empty text", "null text", "finish", "finish by length"}
TYPED |= {"unknown finish", "no choices", "no model", "filter results", "usage"}
TYPED |= {"usage with details", "empty usage"}


def _state(answer: _Answer, out: list[Any]) -> tuple[Any, ...]:
    return out, answer.reason, answer.model_seen, answer.saw_tools, answer.saw_usage


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_fast_path_and_full_walk_agree(name: str) -> None:
    data = orjson.dumps(CHUNKS[name])
    fed = _Answer(REQUEST, keyed=True)
    out = fed.feed(b"data: " + data + b"\n\n")
    walked = _Answer(REQUEST, keyed=True)
    walk_out = walked._new_batch()
    walked._chunk(orjson.loads(data))
    assert _state(fed, out) == _state(walked, walk_out)


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_fast_path_takes_only_text_chunks(name: str) -> None:
    """The chunks the fast path keeps (those the typed decoder takes) are those of text
    only; it hands over the rest."""
    try:
        kept = decode(orjson.dumps(CHUNKS[name])) is not None
    except Exception:  # msgspec rejects the shape
        kept = False
    assert kept == (name in TYPED)


def test_an_error_chunk_still_raises() -> None:
    from g4f_server.errors import ProviderError

    chunk = orjson.dumps({"error": {"message": "model crashed"}})
    with pytest.raises(ProviderError, match="model crashed"):
        _Answer(REQUEST, keyed=True).feed(b"data: " + chunk + b"\n\n")


def test_malformed_chunk_is_a_provider_error() -> None:
    from g4f_server.errors import ProviderError

    with pytest.raises(ProviderError, match="malformed"):
        _Answer(REQUEST, keyed=True).feed(b'data: {"choices": [\n\n')


# Whole (non-streamed) completions: the typed one-pass read against read_completion + whole.
WHOLE = {"id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "openai"}
USAGE = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}


def _message(message: Any, finish: Any = "stop") -> dict[str, Any]:
    return {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}


COMPLETIONS = {
    "text": {**WHOLE, "choices": [_message({"role": "assistant", "content": "Hi"})]},
    "text and usage": {**WHOLE, "choices": [_message({"content": "Hi"})], "usage": USAGE},
    "usage details": {
        **WHOLE,
        "choices": [_message({"content": "Hi"})],
        "usage": {**USAGE, "prompt_tokens_details": {"cached_tokens": 4}},
    },
    "usage without counts": {**WHOLE, "choices": [_message({"content": "Hi"})], "usage": {}},
    "blank lines first": {**WHOLE, "choices": [_message({"content": "\n\n  Hi\nthere"})]},
    "only whitespace": {**WHOLE, "choices": [_message({"content": " \n"})]},
    "empty text": {**WHOLE, "choices": [_message({"content": ""})]},
    "null text": {**WHOLE, "choices": [_message({"content": None})]},
    "no message": {**WHOLE, "choices": [{"index": 0, "finish_reason": "length"}]},
    "unknown finish": {**WHOLE, "choices": [_message({"content": "x"}, "weird")]},
    "no finish": {**WHOLE, "choices": [_message({"content": "x"}, None)]},
    "no model": {"choices": [_message({"content": "a"})]},
    "numeric model": {**WHOLE, "model": 4, "choices": [_message({"content": "f"})]},
    "reasoning": {**WHOLE, "choices": [_message({"reasoning_content": "hmm", "content": "c"})]},
    "tool call": {
        **WHOLE,
        "choices": [
            _message(
                {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
                "tool_calls",
            )
        ],
    },
    "citations": {
        **WHOLE,
        "citations": ["https://a.example"],
        "choices": [_message({"content": "d"})],
    },
    "content parts": {**WHOLE, "choices": [_message({"content": [{"type": "text", "text": "e"}]})]},
    "one-element array": [{**WHOLE, "choices": [_message({"content": "g"})]}],
    "error false": {**WHOLE, "error": False, "choices": [_message({"content": "i"})]},
}
WHOLE_TYPED = {"text", "text and usage", "usage details", "usage without counts"}
WHOLE_TYPED |= {"blank lines first", "only whitespace", "empty text", "null text", "no message"}
WHOLE_TYPED |= {"unknown finish", "no finish", "no model"}


def _whole_state(answer: _Answer, out: list[Any]) -> tuple[Any, ...]:
    """The whole answer's events (the typed read ends it itself, the walk in close())."""
    events = [*out, *answer.close()]
    return (*_state(answer, events), answer.saw_usage, answer.lead)


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
def test_typed_completion_and_full_walk_agree(name: str) -> None:
    raw = orjson.dumps(COMPLETIONS[name])
    read = _Answer(REQUEST, keyed=True)
    out = read.completion(raw, "mp3")
    walked = _Answer(REQUEST, keyed=True)
    walk_out = walked.whole(read_completion(orjson.loads(raw), "mp3"))
    assert _whole_state(read, out) == _whole_state(walked, walk_out)


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
def test_typed_completion_takes_only_text_answers(name: str) -> None:
    try:
        kept = bool(decode_completion(orjson.dumps(COMPLETIONS[name])).choices)
    except Exception:  # msgspec rejects the shape
        kept = False
    assert kept == (name in WHOLE_TYPED)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"choices": [', "malformed JSON"),
        (b'{"error": {"message": "model crashed"}}', "model crashed"),
        (b'{"model": "openai", "choices": []}', "without choices"),
    ],
)
def test_a_completion_that_is_no_answer_raises(raw: bytes, message: str) -> None:
    from g4f_server.errors import ProviderError

    with pytest.raises(ProviderError, match=message):
        _Answer(REQUEST, keyed=True).completion(raw, "mp3")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}, Usage(9, 2, 11)),
        ({"prompt_tokens": 9}, Usage(9, 0)),
        ({"prompt_tokens": 9, "completion_tokens": None, "total_tokens": 9}, Usage(9, 0, 9)),
        (
            {
                "prompt_tokens": 9,
                "completion_tokens": 2,
                "total_tokens": 11,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {},
                "cost_details": "n/a",
            },
            Usage(9, 2, 11, details={"prompt_tokens_details": {"cached_tokens": 4}}),
        ),
        (  # three keys, but not the three counts: its details are still read
            {"prompt_tokens": 9, "completion_tokens": 2, "x_details": {"a": 1}},
            Usage(9, 2, details={"x_details": {"a": 1}}),
        ),
        ({"prompt_tokens": "9", "completion_tokens": 2, "total_tokens": 11}, None),
        ([9, 2, 11], None),
    ],
)
def test_usage_counts_and_details(data: Any, expected: Usage | None) -> None:
    assert _usage(data) == expected


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["Hi", "\n there"], ["Hi", "\n there"]),
        (["", "\n\n  Hi"], ["", "  Hi"]),
        (["\n", " \n", "  Hi\n", "\nthere"], ["", "", "  Hi\n", "\nthere"]),
        (["\u2003", "Hi"], ["", "\u2003Hi"]),
        (["x\n"], ["x\n"]),
    ],
)
def test_blank_lines_that_open_the_answer_are_dropped(
    pieces: list[str], expected: list[str]
) -> None:
    answer = _Answer(REQUEST, keyed=True)
    assert [
        answer._lead(piece) if answer.lead is not None else piece for piece in pieces
    ] == expected


# A read of several events is decoded in one call (_Answer._batch): it must give what the
# same events give read one by one, for every shape, [DONE] or not, and hand over the reads
# it cannot take (a chunk of more than text, a comment, a malformed chunk) unchanged.
def _filler(n: int) -> dict[str, Any]:
    return {**BASE, "choices": [_choice({"content": f"t{n} "})]}


def _events(*chunks: Any) -> bytes:
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)


def _one_by_one(body: bytes) -> tuple[Any, ...]:
    answer = _Answer(REQUEST, keyed=True)
    out: list[Any] = []
    for event in body.split(b"\n\n")[:-1]:
        out += answer.feed(event + b"\n\n")
        if answer.done:  # chat() reads no further
            break
    out += answer.close(streamed=True)
    return (*_state(answer, out), answer.done, answer.chunks)


def _in_one_read(body: bytes) -> tuple[Any, ...]:
    answer = _Answer(REQUEST, keyed=True)
    out = [*answer.feed(body), *answer.close(streamed=True)]
    return (*_state(answer, out), answer.done, answer.chunks)


@pytest.mark.parametrize("done", [False, True])
@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_a_read_of_several_events_gives_what_they_give_one_by_one(name: str, done: bool) -> None:
    body = _events(_filler(1), CHUNKS[name], _filler(2), _filler(3), _filler(4))
    body += b"data: [DONE]\n\n" if done else b""
    assert len(body) > 512  # long enough to be read in one decode
    assert _in_one_read(body) == _one_by_one(body)


@pytest.mark.parametrize(
    "odd",
    [
        b": keep-alive\n\n",
        b"id: 7\ndata: " + orjson.dumps(_filler(9)) + b"\n\n",
        b"data:" + orjson.dumps(_filler(9)) + b"\n\n",  # no space after the colon
        b"data: [DONE]\n\n",  # [DONE] before the end of the read: nothing after it counts
        b"data: \n\n",
    ],
)
def test_a_read_the_single_decode_cannot_take_gives_the_same(odd: bytes) -> None:
    body = _events(_filler(1), _filler(2), _filler(3)) + odd + _events(_filler(4), _filler(5))
    assert _in_one_read(body) == _one_by_one(body)


def test_a_read_of_several_events_with_an_error_still_raises() -> None:
    from g4f_server.errors import ProviderError

    body = _events(_filler(1), _filler(2), {"error": {"message": "model crashed"}}, _filler(3))
    with pytest.raises(ProviderError, match="model crashed"):
        _Answer(REQUEST, keyed=True).feed(body + _events(_filler(4)))


@pytest.mark.parametrize("name", ["text", "text and usage", "no finish"])
def test_typed_completion_ends_with_the_header_usage_as_close_would(name: str) -> None:
    """The typed read ends the answer itself: the usage the x-usage-* headers gave comes
    before its Finish when the body had none, as close() puts it for the full walk."""
    raw = orjson.dumps(COMPLETIONS[name])
    read, walked = _Answer(REQUEST, keyed=True), _Answer(REQUEST, keyed=True)
    read.header_usage = walked.header_usage = Usage(5, 7, 12)
    out = read.completion(raw, "mp3")
    assert read.ended and read.close() == []
    walk_out = walked.whole(read_completion(orjson.loads(raw), "mp3"))
    assert out == [*walk_out, *walked.close()]
    assert (Usage(5, 7, 12) in out) == (name != "text and usage")


def test_a_read_of_text_chunks_gives_text_deltas_as_the_contract_makes_them() -> None:
    """_batch makes each TextDelta without its __init__ (the slot set directly): the
    events must be what TextDelta(text) is, field by field, whatever the contract adds."""
    import dataclasses

    from g4f_server.events import TextDelta

    answer = _Answer(REQUEST, keyed=True)
    out = answer.feed(_events(*(_filler(n) for n in range(8))))
    made = [event for event in out if type(event) is TextDelta]
    assert len(made) == 8
    for n, event in enumerate(made):
        expected = TextDelta(f"t{n} ")
        assert event == expected and hash(event) == hash(expected)
        assert repr(event) == repr(expected)
        assert dataclasses.astuple(event) == dataclasses.astuple(expected)
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.text = "changed"  # type: ignore[misc]
