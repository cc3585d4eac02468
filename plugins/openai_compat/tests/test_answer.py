"""The stream reader on its own: the same events however the network splits the stream,
the text-only fast path agreeing with the full walk, and the SSE details real servers
send (CRLF, comments, ``data:`` without a space, no newline after the last line)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from g4f_server import events as ev
from g4f_server.errors import ProviderError
from g4f_server_openai_compat.answer import StreamReader
from g4f_server_openai_compat.upstreams import resolve

UP = resolve("groq", {"api_key": "k"}, {})


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + orjson.dumps({**body, "choices": choices, **extra}) + b"\n\n"


CALL = {"name": "f", "arguments": "{"}
STREAM = b"".join(
    [
        b": keep-alive\n\n",
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}, usage=None),  # vLLM sends "usage": null on every chunk
        chunk({"reasoning_content": "hmm"}),
        chunk({"content": " w\u00f6rld \\ \"q\""}),
        chunk({"tool_calls": [{"index": 0, "id": "t1", "function": CALL}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        chunk({}, "tool_calls"),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
        b"data: [DONE]\n\n",
        chunk({"content": "after the end"}),
    ]
)  # fmt: skip
EXPECTED = [
    ev.ModelUsed("m"),
    ev.TextDelta("Hel"),
    ev.TextDelta("lo"),
    ev.ReasoningDelta("hmm"),
    ev.TextDelta(' w\u00f6rld \\ "q"'),
    ev.ToolCallDelta(index=0, id="t1", name="f", arguments="{"),
    ev.ToolCallDelta(index=0, id=None, name=None, arguments="}"),
    ev.Usage(3, 4, 7),
    ev.Finish("tool_calls"),
]


def read(pieces: list[bytes]) -> tuple[list[ev.ChatEvent], StreamReader]:
    reader = StreamReader(UP)
    out: list[ev.ChatEvent] = []
    for piece in pieces:
        out += reader.feed(piece)
        if reader.done:
            break
    out += reader.close()
    return out + reader.end(), reader


@pytest.mark.parametrize("size", [1, 2, 7, 64, len(STREAM)])
def test_the_same_events_however_the_reads_fall(size: int) -> None:
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    events, reader = read(pieces)
    assert events == EXPECTED
    assert reader.done


def test_crlf_no_space_and_no_final_newline() -> None:
    stream = (
        chunk({"content": "a"}).replace(b"\n", b"\r\n")
        + b"event: message\r\nid: 7\r\n"
        + chunk({"content": "b"}).replace(b"data: ", b"data:")
        + chunk({"content": "c"}, "length").rstrip(b"\n")
    )
    events, reader = read([stream])
    assert events == [ev.ModelUsed("m"), *map(ev.TextDelta, "abc"), ev.Finish("length")]
    assert not reader.done and reader.finish == "length"  # ended by its finish reason


def test_done_without_a_space_ends_the_stream() -> None:
    events, reader = read([chunk({"content": "a"}) + b"data:[DONE]\n\n" + chunk({"content": "x"})])
    assert events == [ev.ModelUsed("m"), ev.TextDelta("a"), ev.Finish("stop")]
    assert reader.done


def test_a_text_chunk_of_another_choice_or_before_the_model_is_read_in_full() -> None:
    other = b"data: " + orjson.dumps({"choices": [{"index": 1, "delta": {"content": "no"}}]})
    events, _ = read([chunk({"content": "yes"}) + other + b"\n\n" + chunk({"content": "!"})])
    assert events == [ev.ModelUsed("m"), ev.TextDelta("yes"), ev.TextDelta("!"), ev.Finish("stop")]


def test_an_error_chunk_stops_the_read_after_the_text_before_it() -> None:
    reader = StreamReader(UP)
    error = b"data: " + orjson.dumps({"error": {"message": "model crashed"}}) + b"\n\n"
    out = reader.feed(
        chunk({"content": "a"}) + chunk({"content": "b"}) + error + chunk({"content": "c"})
    )
    assert out == [ev.ModelUsed("m"), ev.TextDelta("a"), ev.TextDelta("b")]
    assert isinstance(reader.error, ProviderError) and "model crashed" in str(reader.error)


def test_a_stream_that_never_names_its_model_reads_the_same() -> None:
    nameless = b"".join(
        b"data: " + orjson.dumps({"choices": [{"delta": {"content": t}}]}) + b"\n\n" for t in "ab"
    )
    events, _ = read([nameless + chunk({"content": "c"})])
    assert events == [ev.TextDelta("a"), ev.TextDelta("b"), ev.ModelUsed("m"), ev.TextDelta("c"),
                      ev.Finish("stop")]  # fmt: skip


# A read of several whole events is parsed with one orjson call (StreamReader._at_once):
# the same events as the events read one by one, or, for a read it cannot take, the read
# goes line by line.
WORDS = b"".join(chunk({"content": f"w{i} "}) for i in range(6))
AT_ONCE = [
    WORDS + chunk({}, "stop") + b"data: [DONE]\n\n",
    WORDS + chunk({"reasoning_content": "r"}) + WORDS,
    WORDS + chunk(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    WORDS + b"data: 5\n\n" + WORDS,  # JSON but no object: skipped either way
    WORDS + b"data: [DONE]\n\n" + WORDS,  # nothing after [DONE] counts
    WORDS + b"data: keep-alive\n\n" + WORDS,  # not JSON: line by line
    WORDS + b": comment\n\n" + WORDS,
]


@pytest.mark.parametrize("body", AT_ONCE)
def test_a_read_of_several_events_gives_what_they_give_one_by_one(body: bytes) -> None:
    assert len(body) > 512  # long enough to be parsed at once
    events = body.split(b"\n\n")[:-1]
    one_by_one, slow = read([event + b"\n\n" for event in events])
    at_once, fast = read([body])
    assert at_once == one_by_one
    assert (fast.done, fast.finish) == (slow.done, slow.finish)


def test_which_reads_are_parsed_at_once() -> None:
    for body, kept in ((AT_ONCE[0], True), (AT_ONCE[5], False), (AT_ONCE[6], False)):
        reader = StreamReader(UP)
        reader.feed(body)
        assert reader.batched is kept


def test_an_error_in_a_read_of_several_events_is_kept_after_the_text_before_it() -> None:
    reader = StreamReader(UP)
    out = reader.feed(WORDS + chunk(error={"message": "boom"}) + WORDS + b"data: [DONE]\n\n")
    assert out == [ev.ModelUsed("m"), *(ev.TextDelta(f"w{i} ") for i in range(6))]
    assert isinstance(reader.error, ProviderError) and "boom" in str(reader.error)


@pytest.mark.parametrize("pause", [0.0, 0.05])
async def test_a_json_completion_read_whole_or_as_it_arrives(
    aiohttp_server: Any, provider_context: Any, pause: float
) -> None:
    """A JSON completion that came with its headers is taken as it is (no coroutine);
    one whose body is still arriving is read to its end; one that does not parse was cut.
    The same events, or the same error, either way."""
    import asyncio

    from aiohttp import web

    from g4f_server.requests import ChatRequest
    from g4f_server_openai_compat import chat

    body = orjson.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )
    sent = {"body": body}

    async def completions(request: web.Request) -> web.StreamResponse:
        raw = sent["body"]
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(raw)
        await resp.prepare(request)
        await resp.write(raw[:20])
        await asyncio.sleep(pause)
        await resp.write(raw[20:])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    server = await aiohttp_server(app, host="127.0.0.1")
    up = resolve("vllm", {}, {"VLLM_BASE_URL": str(server.make_url("/v1"))})
    hi = [{"role": "user", "content": "hi"}]
    request = ChatRequest.model_validate({"model": "m", "messages": hi})
    context = provider_context()
    items = [item async for item in chat.chat(up, request, context)]
    flat = [event for batch in items for event in batch]
    assert [e for e in flat if isinstance(e, ev.TextDelta)] == [ev.TextDelta("Hello")]
    assert ev.Finish("stop") in flat
    sent["body"] = body[:-1] + b"," + body[-1:]  # complete, but not JSON: cut on the way
    with pytest.raises(ProviderError) as info:
        _ = [item async for item in chat.chat(up, request, context)]
    assert info.value.code == "upstream_stream_cut"


def event(body: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


def choice(**fields: Any) -> dict[str, Any]:
    return {"index": 0, "delta": {"content": "x"}, "finish_reason": None, **fields}


# One chunk between text chunks: those of text only (the first group) are decoded typed
# (chunks.py); any other sends its read to orjson and the walk. Either way, the events
# (and the error) are those the chunk gives read on its own, line by line.
TEXT_ONLY = {
    "text": {"model": "m", "choices": [choice()]},
    "role and text": {"choices": [choice(delta={"role": "assistant", "content": "y"})]},
    "empty text": {"choices": [choice(delta={"content": ""})]},
    "null text": {"choices": [choice(delta={"content": None})]},
    "empty delta": {"choices": [choice(delta={})]},
    "no delta": {"choices": [{"index": 0, "finish_reason": None}]},
    "another choice": {"choices": [choice(index=1, delta={"content": "no"})]},
    "two choices": {"choices": [choice(), choice(index=1, delta={"content": "no"})]},
    "no index": {"choices": [{"delta": {"content": "z"}}]},
    "finish": {"choices": [choice(finish_reason="length")]},
    "unknown finish": {"choices": [choice(finish_reason="weird")]},
    "empty finish": {"choices": [choice(finish_reason="")]},
    "finish error": {"choices": [choice(finish_reason="error", error={"message": "oom"})]},
    "finish error, no detail": {"choices": [choice(finish_reason="error")]},
    "no choices": {"choices": []},
    "no model": {"choices": [choice()], "model": None},
    "empty model": {"choices": [choice()], "model": ""},
    "usage": {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
    "usage null": {"choices": [choice()], "usage": None},
    "usage without prompt": {"choices": [], "usage": {"completion_tokens": 2}},
    "usage not an object": {"choices": [], "usage": [1, 2]},
    "logprobs and ids": {"id": "c", "created": 1, "choices": [choice(logprobs={"a": 1})]},
}
MORE_THAN_TEXT = {
    "reasoning": {"choices": [choice(delta={"reasoning_content": "hmm"})]},
    "reasoning too": {"choices": [choice(delta={"reasoning": "hmm", "content": "c"})]},
    "empty reasoning": {"choices": [choice(delta={"reasoning": "", "content": "c"})]},
    "tool call": {"choices": [choice(delta={"tool_calls": [{"function": CALL}]})]},
    "no tool calls": {"choices": [choice(delta={"tool_calls": []})]},
    "whole message": {"choices": [{"index": 0, "message": {"content": "m"}}]},
    "error": {"error": {"message": "boom"}},
    "error false": {"error": False, "choices": [choice()]},
    "numeric model": {"model": 4, "choices": [choice()]},
    "numeric finish": {"choices": [choice(finish_reason=1)]},
    "null index": {"choices": [choice(index=None)]},
    "null choices": {"choices": None},
    "choice not an object": {"choices": ["x"]},
    "text not a string": {"choices": [choice(delta={"content": 5})]},
    "not an object": [1],
}


def read_to_error(pieces: list[bytes]) -> tuple[list[ev.ChatEvent], StreamReader]:
    """As chat.py reads: an error the stream reported ends it after that read's events."""
    reader = StreamReader(UP)
    out: list[ev.ChatEvent] = []
    for piece in pieces:
        out += reader.feed(piece)
        if reader.error is not None:
            return out, reader
    return out + reader.close() + reader.end(), reader


@pytest.mark.parametrize("name", sorted(TEXT_ONLY | MORE_THAN_TEXT))
def test_a_typed_read_gives_what_the_walk_gives(name: str) -> None:
    shape = (TEXT_ONLY | MORE_THAN_TEXT)[name]
    body = WORDS + event(shape) + WORDS + chunk({}, "stop")
    one_by_one, slow = read_to_error([piece + b"\n\n" for piece in body.split(b"\n\n")[:-1]])
    at_once, fast = read_to_error([body])
    assert at_once == one_by_one
    assert (fast.done, fast.finish, str(fast.error)) == (slow.done, slow.finish, str(slow.error))
    assert fast.batched and fast.typed == (name in TEXT_ONLY)
