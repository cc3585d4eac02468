"""The write loop's text chunks (streaming.splice): a run of text deltas is encoded at
once, and the bytes are exactly a chunk per delta as the renderer writes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from g4f_server import events
from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols.openai_chat.render import ChunkRenderer
from g4f_server.protocols.streaming import splice
from g4f_server.web.jsonio import dumps
from tests.fake_providers import Batched

USER = [{"role": "user", "content": "hello there"}]
BEFORE, AFTER = b'data: {"x":', b"}\n\n"

# Texts whose encoding has escapes next to the run's separator, or that forbid the joined
# encoding (a NUL or a backslash of their own: each is then encoded alone).
ODD = [
    "plain",
    'a "quote"',
    "é 😀 \u2028\u2029",
    "new\nline\ttab\r\x1f\x7f",
    "",
    "\\u0000",
    "back\\slash",
    "nul\0inside",
    "\0",
    "ends with \\",
    "u0000",
    '"',
]


def one_by_one(texts: list[str]) -> bytes:
    return b"".join(BEFORE + dumps(text) + AFTER for text in texts)


@pytest.mark.parametrize(
    "texts",
    [
        ["a", "b"],
        [f"tok{i} " for i in range(20)],
        ODD,
        [text for text in ODD if "\\" not in text and "\0" not in text],
        ["x", "\\u0000", "y"],
        ["u0000", "\0"],
        ["\\", "u0000"],  # joined: the two chars \ and u0000 (a fake separator once encoded)
    ],
)
def test_a_run_is_the_chunks_one_by_one(texts: list[str]) -> None:
    lines: list[bytes] = [b"start"]
    pending = [text for text in texts if text]  # the write loop leaves out empty deltas
    splice(lines, pending, BEFORE, AFTER)
    assert b"".join(lines) == b"start" + one_by_one([text for text in texts if text])
    assert pending == []


def test_a_text_that_cannot_be_encoded_fails_after_the_chunks_before_it() -> None:
    lines: list[bytes] = []
    with pytest.raises(TypeError):
        splice(lines, ["ok", "fine", "\ud800", "never"], BEFORE, AFTER)
    assert b"".join(lines) == one_by_one(["ok", "fine"])


def sse_events(raw: bytes) -> list[Any]:
    blocks = [block[6:] for block in raw.split(b"\n\n") if block]
    return [json.loads(block) for block in blocks if block != b"[DONE]"]


async def test_streamed_runs_equal_the_renderers_event_by_event(make_client: Any) -> None:
    """Through the whole kernel: runs of deltas broken by other events (a model named
    mid-run changes every later chunk's head), a plugin's subclass and odd text."""
    batches: list[list[events.ChatEvent]] = [
        [events.TextDelta(text) for text in ODD],
        [
            events.TextDelta("a"),
            events.TextDelta("b"),
            events.ModelUsed("other-2"),
            events.TextDelta("c"),
            events.TextDelta('"d"'),
            events.Usage(1, 2, 3),
            events.TextDelta("e"),
        ],
        [events.TextDelta("f")],
        [events.TextDelta("g"), events.TextDelta("h"), events.Finish("length")],
    ]
    client = await make_client(Batched(items=batches))
    body = {"model": "batch-1", "messages": USER, "stream": True}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    got = await resp.read()
    first = sse_events(got)[0]

    renderer = ChunkRenderer(
        first["id"], first["model"], first["provider"], created=first["created"]
    )  # the frame with that second
    transcript = Transcript()
    want = [renderer.start()]
    for event in (event for batch in batches for event in batch):
        transcript.add(event)
        want.append(renderer.render(event) or b"")
    want.append(renderer.end(transcript))
    assert got == b"".join(want)
    texts = [e["choices"][0]["delta"].get("content") for e in sse_events(got)[1:-1]]
    assert texts == [*(t for t in ODD if t), "a", "b", "c", '"d"', "e", "f", "g", "h"]


async def test_a_text_that_cannot_be_encoded_ends_the_stream_after_the_text_before_it(
    make_client: Any,
) -> None:
    batches = [[events.TextDelta("ok"), events.TextDelta("fine"), events.TextDelta("\ud800")]]
    client = await make_client(Batched(items=batches))
    body = {"model": "batch-1", "messages": USER, "stream": True}
    resp = await client.post("/v1/chat/completions", json=body)
    got = await resp.read()
    chunks = sse_events(got)
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["ok", "fine"]
    assert chunks[3]["error"]["type"] == "provider_error"
    assert got.endswith(b"data: [DONE]\n\n")
