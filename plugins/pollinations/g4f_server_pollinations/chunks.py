"""The usual streamed chunk, typed (msgspec): decoding it skips every field we do not read
(ids, timestamps, content filter results) instead of building dicts and strings for them.

Only the text fast path of ``chat._Answer`` reads these; any chunk that does not fit them,
or carries more than text, is read by the full walk over ``orjson.loads`` instead.
"""

from __future__ import annotations

import msgspec

ShapeError = msgspec.MsgspecError  # not JSON, or not this shape


class Delta(msgspec.Struct):
    content: str | None = None
    # Only looked at for presence: a chunk with any of these takes the full walk.
    reasoning_content: msgspec.Raw | None = None
    reasoning: msgspec.Raw | None = None
    tool_calls: msgspec.Raw | None = None


class Choice(msgspec.Struct):
    delta: Delta | None = None
    finish_reason: str | None = None


class TextChunk(msgspec.Struct):
    choices: list[Choice] = []
    model: str | None = None
    usage: msgspec.Raw | None = None
    citations: msgspec.Raw | None = None
    error: msgspec.Raw | None = None


decode = msgspec.json.Decoder(TextChunk).decode
