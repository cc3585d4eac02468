"""Reading an upstream: what every provider needs and should not write again.

- ``SSELines`` / ``sse_data``: the ``data:`` payloads of a server-sent event stream as
  OpenAI-compatible upstreams send it (one JSON document per ``data:`` line, ``[DONE]``
  at the end), split across network reads however they fall.
- ``NDJSONLines`` / ``ndjson_lines``: one JSON document per line (Ollama's native API
  and others).
- ``Lines``: the complete lines of a byte stream, for a provider that reads its own
  ``data:`` lines (a fast path that decodes the chunks it expects most in one pass).
- ``retry_after`` and ``retry_delay``: how long an upstream asked us to wait, from
  ``Retry-After`` (seconds or an HTTP date) or the ``x-ratelimit-reset-*`` headers
  (``1m30s``, ``6.5s``, ``250ms``) that OpenAI-style APIs send with a 429.

Part of the plugin contract: it imports nothing else of the gateway. The readers work on
bytes and never parse JSON themselves, so a provider keeps its own (fast) decoder.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

__all__ = [
    "Lines",
    "NDJSONLines",
    "SSELines",
    "ndjson_lines",
    "parse_duration",
    "retry_after",
    "retry_delay",
    "sse_data",
]

DONE = b"[DONE]"


class Lines:
    """Complete lines of a byte stream, fed one network read at a time: ``split`` returns
    the lines a read completed (without their ``\n``; a ``\r`` stays), ``partial`` holds
    the start of a line whose end has not arrived. No limit on a line's length: an
    upstream chunk can carry a large base64 blob."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = bytearray()

    @property
    def partial(self) -> bytearray:
        return self._partial

    def split(self, piece: bytes) -> list[bytes] | list[bytearray]:
        partial = self._partial
        if partial:
            partial += piece
            if piece.find(b"\n") < 0:  # `in` on bytes tries an int first: twice the cost
                return []
            lines = partial.split(b"\n")
            partial.clear()
        else:
            lines = piece.split(b"\n")
        if rest := lines.pop():
            partial += rest
        return lines

    def rest(self) -> bytes:
        """What is left after the last newline (a last line the stream did not end), once."""
        rest = bytes(self._partial)
        self._partial.clear()
        return rest


class SSELines(Lines):
    """The ``data:`` payloads of an event stream. ``feed`` returns those that a read
    completed; ``close`` the one left when the stream ended without a final newline.
    Comments, ``event:``, ``id:`` and ``retry:`` lines are skipped. After ``[DONE]`` the
    stream is over: ``done`` is true and nothing more is returned."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        super().__init__()
        self.done = False

    def feed(self, piece: bytes) -> list[bytes]:
        if self.done:
            return []
        out: list[bytes] = []
        for line in self.split(piece):
            if data := self._data(line):
                if data == DONE:
                    self.done = True
                    break
                out.append(data)
        return out

    def close(self) -> list[bytes]:
        data = self._data(self.rest())
        if self.done or not data:
            return []
        if data == DONE:
            self.done = True
            return []
        return [data]

    @staticmethod
    def _data(line: bytes | bytearray) -> bytes:
        if not line.startswith(b"data:"):
            line = line.strip()
            if not line.startswith(b"data:"):
                return b""  # a blank line, a comment, event:, id: or retry:
        return bytes(line[5:].strip())


class NDJSONLines(Lines):
    """Non-blank lines of a newline-delimited JSON stream, as bytes."""

    __slots__ = ()

    def feed(self, piece: bytes) -> list[bytes]:
        return [bytes(s) for line in self.split(piece) if (s := line.strip())]

    def close(self) -> list[bytes]:
        rest = self.rest().strip()
        return [rest] if rest else []


async def sse_data(content: Any) -> AsyncIterator[list[bytes]]:
    """The ``data:`` payloads of an aiohttp response body (``resp.content``), one list
    per network read that completed any (a provider yields one event list per read, so
    the gateway writes them to its client in one piece)."""
    lines = SSELines()
    async for piece in content.iter_any():
        if found := lines.feed(piece):
            yield found
        if lines.done:
            return
    if found := lines.close():
        yield found


async def ndjson_lines(content: Any) -> AsyncIterator[list[bytes]]:
    """The lines of an NDJSON body, one list per network read that completed any."""
    lines = NDJSONLines()
    async for piece in content.iter_any():
        if found := lines.feed(piece):
            yield found
    if found := lines.close():
        yield found


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: str | None) -> float | None:
    """Seconds in a duration as rate-limit headers write it: ``6s``, ``1m30s``,
    ``2.5ms``, ``1h2m``, or a bare number of seconds. None when it is not one."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def retry_delay(headers: Mapping[str, str]) -> float | None:
    """How long an upstream asked us to wait before the next request, from its
    headers: ``Retry-After``, ``retry-after-ms``, then the longest of the
    ``x-ratelimit-reset-requests`` / ``-tokens`` resets that are exhausted (their
    ``x-ratelimit-remaining-*`` is 0) or, when none says so, of all of them."""
    if (seconds := retry_after(headers.get("Retry-After"))) is not None:
        return seconds
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    resets: dict[str, float] = {}
    for kind in ("requests", "tokens"):
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
        if reset is not None:
            resets[kind] = reset
    if not resets:
        return None
    spent = [r for k, r in resets.items() if headers.get(f"x-ratelimit-remaining-{k}") == "0"]
    return max(spent or resets.values())
