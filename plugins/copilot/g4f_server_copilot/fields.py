"""Reading fields of upstream frames: only text is text.

The upstream's frames are JSON from a service we do not control; a field of the wrong
type (a list where a string belongs) must not reach the user as a Python repr.
"""

from __future__ import annotations

from typing import Any


def text(frame: dict[str, Any], key: str) -> str:
    """``frame[key]`` as text: strings as they are, numbers written out, anything else ''."""
    value = frame.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def string(frame: dict[str, Any], key: str) -> str | None:
    """``frame[key]`` when it is a non-empty string (no conversion: a number is no URL or id)."""
    value = frame.get(key)
    return value if isinstance(value, str) and value else None
