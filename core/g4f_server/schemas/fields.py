"""Field types shared by every request schema, checked at the edge so that a client
mistake is a 400 naming the field, never a provider call that fails (issue 17)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator

from g4f_server.errors import InvalidRequestError

# What an HTTP header value can carry: providers send the key upstream in a header, and a
# NUL, a line break or a non-ASCII byte there fails inside the HTTP client (a 502 and a
# failover for what is the client's mistake).
_HEADER_SAFE = re.compile(r"^[\x20-\x7e]*$")


def header_safe(value: str) -> str:
    if not _HEADER_SAFE.match(value):
        raise ValueError("must be printable ASCII (it travels in an HTTP header)")
    return value


ApiKey = Annotated[str, AfterValidator(header_safe)]


# --- extra fields that providers read: their types, checked before any provider call ----

Rule = tuple[Callable[[Any], bool], str]


def _dimension(value: Any) -> bool:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return type(value) is int and 1 <= value <= 16384


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


IMAGE_OPTIONS: dict[str, Rule] = {
    "width": (_dimension, "an integer from 1 to 16384"),
    "height": (_dimension, "an integer from 1 to 16384"),
    "image": (lambda v: isinstance(v, str) or _strings(v), "an image URL or a list of them"),
    "images": (lambda v: isinstance(v, str) or _strings(v), "an image URL or a list of them"),
}
CHAT_OPTIONS: dict[str, Rule] = {
    "modalities": (_strings, 'a list such as ["text"] or ["text", "audio"]'),
}


def typed_extras(data: Any, rules: dict[str, Rule]) -> Any:
    """``data`` unchanged, or a 400 naming the first extra field of the wrong type.
    (Raised as our own error: pydantic passes it through with its ``param``.)"""
    if isinstance(data, dict):
        for name, (valid, expected) in rules.items():
            value = data.get(name)
            if value is not None and not valid(value):
                raise InvalidRequestError(f"Invalid value for '{name}': {expected}", param=name)
    return data
