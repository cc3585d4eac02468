"""Compressed request bodies (``Content-Encoding: gzip`` / ``deflate``), inflated by us.

aiohttp's own decoding (turned off: ``AUTO_DECOMPRESS`` in the app's handler arguments)
inflated a body on the event loop as it arrived, ahead of any size check of ours: a 199
KiB gzip bomb stalled every other request for 0.5-0.6 s before its 413, and a body that
was not gzip at all answered 500 (issue 28). Here a body is inflated in steps of
``STEP`` bytes of output with ``max_body_size`` checked after each, so a bomb costs at
most the limit; the first ``INLINE_OUTPUT`` bytes are inflated on the loop (a typical
SDK body, ~0.1 ms), the rest in a worker thread (zlib releases the GIL while it works).
"""

from __future__ import annotations

import asyncio
import zlib

from g4f_server import errors

# Handler arguments of the app (``web.Application(handler_args=...)``): every runner,
# the tests' included, then leaves the body as sent.
AUTO_DECOMPRESS = {"auto_decompress": False}
INLINE_OUTPUT = 1024 * 1024  # ~1 ms of inflating on the loop at most
STEP = 256 * 1024  # output per zlib call: the limit is checked this often
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def content_encoding(value: str | None) -> str | None:
    """The coding to undo (``gzip``, ``deflate``), None for none; 400 for any other."""
    coding = (value or "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding not in _WBITS:
        raise errors.InvalidRequestError(
            f"Content-Encoding {coding!r} is not supported: send gzip, deflate or none",
            code="unsupported_content_encoding",
        )
    return coding


class _Inflater:
    """One body's inflating, resumable: ``run`` stops after ``budget`` bytes of output."""

    def __init__(self, data: bytearray, coding: str, limit: int) -> None:
        self.coding, self.limit = coding, limit
        self.out = bytearray()
        self.pending: bytes | bytearray = data
        self.inflater = zlib.decompressobj(_WBITS[coding])
        self.started = False

    def run(self, budget: int) -> bool:
        """Inflate until done (True) or ``budget`` more bytes are out (False)."""
        stop = len(self.out) + budget
        while True:
            try:
                chunk = self.inflater.decompress(self.pending, STEP)
            except zlib.error as exc:
                if not self.started and self.coding == "deflate":
                    # "deflate" is zlib-wrapped by the RFC, raw in some clients: as browsers do.
                    self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    self.started = True
                    continue
                raise errors.InvalidRequestError(
                    f"The request body is not valid {self.coding} (Content-Encoding): {exc}",
                    code="invalid_content_encoding",
                ) from None
            self.started = True
            self.out += chunk
            if len(self.out) > self.limit:
                raise errors.PayloadTooLargeError(
                    f"Request body too large once inflated (limit {self.limit} bytes, "
                    "max_body_size)"
                )
            self.pending = self.inflater.unconsumed_tail
            if self.inflater.eof:
                rest = self.inflater.unused_data
                if not rest:
                    return True
                # gzip allows several members one after the other (``cat a.gz b.gz``).
                self.inflater = zlib.decompressobj(_WBITS[self.coding])
                self.pending = rest
            elif not self.pending and not chunk:
                raise errors.InvalidRequestError(
                    f"The request body is a truncated {self.coding} stream (Content-Encoding)",
                    code="invalid_content_encoding",
                )
            if len(self.out) >= stop:
                return False


async def inflate(data: bytearray, coding: str, limit: int) -> bytearray:
    """``data`` inflated, within ``limit`` bytes; 400 when it is not ``coding``."""
    inflater = _Inflater(data, coding, limit)
    if not inflater.run(INLINE_OUTPUT):
        await asyncio.to_thread(inflater.run, limit + STEP)
    return inflater.out
