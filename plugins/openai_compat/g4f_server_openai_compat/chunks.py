"""The usual streamed chunk, typed (msgspec): a read of several events is decoded without
building a dict and a string for every field we do not read (ids, timestamps, object
names, logprobs), and its text needs none of the fast path's per-chunk checks.

Only ``answer.StreamReader``'s read of several events uses these. The fields that make a
chunk more than text are typed ``None`` (reasoning, tool calls, a whole message, an
error) or as narrowly as the full walk reads them (a model that is not a string, an index
that is not a number): a read with any such chunk fails to decode here and is parsed by
orjson and read by the walk (``StreamReader._chunk``), which gives its events, or its
error. What does decode gives the events the walk would give it (test_answer.py holds
both equal over many chunk shapes). The structs cannot form a reference cycle, so the
GC need not track them.
"""

from __future__ import annotations

from typing import Any

import msgspec

ShapeError = msgspec.MsgspecError  # not JSON, not this shape, or more than text


class Delta(msgspec.Struct, gc=False):
    content: str | None = None
    reasoning_content: None = None
    reasoning: None = None
    tool_calls: None = None


class Choice(msgspec.Struct, gc=False):
    index: int = 0
    delta: Delta | None = None
    message: None = None  # a whole message in a chunk: its tool calls need the walk
    finish_reason: str | None = None
    error: Any = None  # read only with finish_reason "error" (OpenRouter)


class TextChunk(msgspec.Struct, gc=False):
    choices: list[Choice] = []
    model: str | None = None
    usage: Any = None  # read as the walk reads it
    error: None = None


decode_many = msgspec.json.Decoder(list[TextChunk]).decode
