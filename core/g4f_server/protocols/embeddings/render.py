"""Embeddings in OpenAI's response shape, as floats or as base64.

base64 is what openai-python asks for by default (and decodes itself): each vector as
little-endian float32 bytes, a quarter of the size of the JSON numbers and no float
parsing on either side. A value beyond float32's range becomes an infinity there, as it
would at OpenAI.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from g4f_server.pipeline.embeddings import Embedded

_BIG_ENDIAN = sys.byteorder == "big"


def float32_base64(vector: Sequence[float]) -> str:
    """``vector`` as little-endian float32 bytes, base64-encoded (one C loop each)."""
    packed = array("f", vector)
    if _BIG_ENDIAN:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _floats(vector: Sequence[float]) -> Any:
    # orjson writes lists and tuples; a provider may hand any sequence (an array("f")).
    return vector if type(vector) is list or type(vector) is tuple else list(vector)


def embeddings_body(embedded: Embedded, encoding_format: str) -> dict[str, Any]:
    encode = float32_base64 if encoding_format == "base64" else _floats
    usage: dict[str, Any] = {
        "prompt_tokens": embedded.prompt_tokens,
        "total_tokens": embedded.prompt_tokens,
    }
    if embedded.estimated:
        usage["estimated"] = True
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(vector)}
            for i, vector in enumerate(embedded.vectors)
        ],
        "model": embedded.model,
        "usage": usage,
        "provider": embedded.provider,
    }
