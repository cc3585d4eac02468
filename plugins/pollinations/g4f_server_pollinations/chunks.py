"""The usual streamed chunk and whole completion, typed (msgspec): decoding skips every
field we do not read (ids, timestamps, content filter results) instead of building dicts
and strings for them.

Only the text fast paths of ``chat._Answer`` read these. The fields that make an answer
more than text (and usage) are typed ``None``: one that carries any of them fails to decode
here and is read by the full walk over ``orjson.loads`` instead, as is anything of another
shape.
The structs cannot form a reference cycle, so the GC need not track them.
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
    delta: Delta | None = None
    finish_reason: str | None = None


class TextChunk(msgspec.Struct, gc=False):
    # In the order upstreams send them (the model before the choices): msgspec looks for
    # each key from the field after the last one found, so a key in order is found at once
    # (~130 instructions a chunk less than the other way round).
    model: str | None = None
    choices: list[Choice] = []
    # The usage chunk (the last but [DONE] of a keyed stream) too; read as the walk reads
    # it (chat._usage): its "*_details" objects are open-ended.
    usage: dict[str, Any] | None = None
    citations: None = None
    error: None = None


decode = msgspec.json.Decoder(TextChunk).decode
# The chunks of one network read, made one JSON array (chat._Answer._batch).
decode_many = msgspec.json.Decoder(list[TextChunk]).decode


class Message(msgspec.Struct, gc=False):
    content: str | None = None
    reasoning_content: None = None
    reasoning: None = None
    tool_calls: None = None
    audio: None = None


class WholeChoice(msgspec.Struct, gc=False):
    message: Message | None = None
    finish_reason: str | None = None


class TextCompletion(msgspec.Struct, gc=False):
    choices: list[WholeChoice] = []
    model: str | None = None
    # Read as the walk reads it (chat._usage): its "*_details" objects are open-ended.
    usage: dict[str, Any] | None = None
    citations: None = None
    error: None = None


decode_completion = msgspec.json.Decoder(TextCompletion).decode
