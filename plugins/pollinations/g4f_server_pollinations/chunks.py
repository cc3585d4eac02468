"""The usual streamed chunk, typed (msgspec): decoding it skips every field we do not read
(ids, timestamps, content filter results) instead of building dicts and strings for them.

Only the text fast path of ``chat._Answer`` reads these. The fields that make a chunk
more than text are typed ``None``: a chunk that carries any of them fails to decode here
and is read by the full walk over ``orjson.loads`` instead, as is anything of another
shape. The structs cannot form a reference cycle, so the GC need not track them.
"""

from __future__ import annotations

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
    choices: list[Choice] = []
    model: str | None = None
    usage: None = None
    citations: None = None
    error: None = None


decode = msgspec.json.Decoder(TextChunk).decode
