"""A request body, read once: within its limits, inflated, parsed as JSON and validated.

Every route that takes a JSON body reads it here (``read_model``), so a new protocol
inherits the limits by reading its body the same way.
Imported by those routes only, so pydantic loads with the first body, not at start-up.
The limits are settings (``docs/configuration.md``); each refusal is a 400, 408 or 413
naming its setting.

Why each limit exists (issue 17): the work a body causes must stay in proportion to what
the server allows, or one request freezes the event loop for everyone:
- ``max_body_size``, ``body_timeout``: a client that announces a body and then goes
  silent held its connection forever;
- ``max_json_depth``, ``max_json_items``: deeply nested or huge-count JSON parses fast in
  C but costs seconds in every later pass (validation, copies, serializing history), and
  orjson cannot serialize more than 255 levels, so deeper history could not be stored;
- ``max_messages``, ``max_content_parts``: checked by the chat schema before it validates
  the messages one by one (``g4f_server.requests.chat_limits``);
- ``max_embedding_inputs``: the inputs of one embeddings request, checked by its schema
  before they are validated one by one (a token-id list counts as one input; its ids are
  values, bounded by ``max_json_items``).

Compressed bodies (``Content-Encoding: gzip`` / ``deflate``) are inflated here, not by
aiohttp (``auto_decompress`` is off in the app's handler arguments): aiohttp inflated a
body on the event loop as it arrived, ahead of any size check of ours, so a 199 KiB gzip
bomb stalled every other request for 0.5-0.6 s before its 413, and a body that was not
gzip at all answered 500 (issue 28). Here a body is inflated in steps of ``STEP`` bytes
of output with ``max_body_size`` checked after each, so a bomb costs at most the limit;
the first ``INLINE_OUTPUT`` bytes are inflated on the loop (a typical SDK body, ~0.1 ms),
the rest in a worker thread (zlib releases the GIL while it works).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.config import AppConfig
from g4f_server.requests import ChatRequest, names_no_option, set_request_limits
from g4f_server.web.validation import lean_chat, validation_error

M = TypeVar("M", bound=BaseModel)

INLINE_OUTPUT = 1024 * 1024  # ~1 ms of inflating on the loop at most
STEP = 256 * 1024  # output per zlib call: the limit is checked this often
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_model(request: web.Request, model: type[M]) -> M:
    """The body as ``model``, within every limit; a 400 names its first problem.

    One frame for a body that has all arrived uncompressed (nearly every request): no
    coroutine of ``read_body``, no copy (the parser takes bytes), no helper frames. Its
    Content-Length needs no check: the HTTP parser ended the body there, so its length
    says the same (a body over the limit is refused by its length, with the same 413)."""
    config = request.app[CONFIG]
    content = request.content
    if (
        content.is_eof()
        and content.exception() is None  # (a broken body's error is mapped by ``_read_raw``)
        and "Content-Encoding" not in request.headers
    ):
        body: bytes | bytearray = content.read_nowait()
        if len(body) > config.max_body_size:
            raise too_large(config.max_body_size)
    else:  # still arriving, or compressed: the general path
        body = await read_body(request, config)
    if not body or body.isspace():
        raise errors.InvalidRequestError("The request body is empty; send a JSON object")
    max_depth, max_items = config.max_json_depth, config.max_json_items
    # Bounded by its bytes (nearly every body): within the pre-check's bound too.
    containers, values = shape_bounds(body)
    bounded = containers <= max_depth and values <= max_items
    if not bounded:
        precheck_json_size(body, max_items)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
    del body  # the parsed objects are the one copy from here on
    if type(data) is not dict:
        raise errors.InvalidRequestError("The request body must be a JSON object")
    if not bounded:
        check_json_shape(data, max_depth, max_items)
    # The models' own limits (their validators cannot see the settings).
    max_messages, max_parts = config.max_messages, config.max_content_parts
    set_request_limits(max_messages, max_parts, config.max_embedding_inputs)
    validator = model.__pydantic_validator__
    # A chat body with fewer values than either limit has no more messages or parts than
    # that; naming no option too, its request-wide checks have nothing to refuse.
    if (
        model is ChatRequest
        and values <= max_messages
        and values <= max_parts
        and names_no_option(data)
    ):
        validator = lean_chat()
    try:
        # model_validate's own work, without its Python frame (its options are unused).
        return validator.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise validation_error(exc) from None


async def read_body(request: web.Request, config: AppConfig) -> bytearray:
    """The whole body in one buffer (no second copy), within ``max_body_size`` bytes and
    ``body_timeout`` seconds; a gzip or deflate body is inflated, within
    ``max_body_size`` too."""
    limit = config.max_body_size
    coding = request.headers.get("Content-Encoding")
    if coding is not None:
        coding = content_encoding(coding)
    body = await _read_raw(request, config.body_timeout, limit)
    if coding is not None:
        return await inflate(body, coding, limit)
    return body


def too_large(limit: int, setting: str = "max_body_size") -> errors.PayloadTooLargeError:
    return errors.PayloadTooLargeError(f"Request body too large (limit {limit} bytes, {setting})")


async def _read_raw(request: web.Request, timeout: float, limit: int) -> bytearray:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    content = request.content
    body = bytearray()
    try:
        if content.is_eof():  # all of it is here (a small body, nearly always): no timer
            body += content.read_nowait()
            if len(body) > limit:
                raise too_large(limit)
            return body
        async with asyncio.timeout(timeout):
            while chunk := await content.readany():
                if len(body) + len(chunk) > limit:
                    raise too_large(limit)
                body += chunk
    except TimeoutError:
        raise errors.RequestTimeoutError(
            f"The request body did not arrive within {timeout:g} s (body_timeout)"
        ) from None
    except HttpProcessingError as exc:  # a malformed chunked encoding, a short body
        raise errors.InvalidRequestError(f"Malformed request body: {exc.message}") from None
    return body


# --- the JSON's shape ----------------------------------------------------------------------


def _too_many(max_items: int, param: str | None = None) -> errors.InvalidRequestError:
    return errors.InvalidRequestError(
        f"The JSON body holds more than {max_items} values (max_json_items)",
        param=param,
        code="json_too_large",
    )


def precheck_json_size(body: bytes | bytearray, max_items: int) -> None:
    """Refuse, before parsing, a body with more than ``max_items`` objects: parsing
    600,000 small objects alone holds the event loop for about half a second. ``{"``
    starts an object with a key in compact JSON (what clients send); inside a string a
    quote is escaped, so the bytes appear there only where a string ends in ``{``.
    Counting them costs ~10 ms for 30 MiB, in C. JSON with a space after ``{`` escapes
    this pre-check and meets the exact count (``check_json_shape``) after parsing."""
    if body.count(b'{"') > max_items:
        raise _too_many(max_items)


def shape_bounded_by_bytes(body: bytes | bytearray, max_depth: int, max_items: int) -> bool:
    """True when the bytes alone prove the JSON within both bounds, so that
    ``check_json_shape`` (and ``precheck_json_size``, whose count is at most this one's)
    can be skipped: true of a chat body of up to a few dozen messages under the defaults
    (~1 us here against ~10 us there); longer ones walk."""
    containers, values = shape_bounds(body)
    return containers <= max_depth and values <= max_items


def shape_bounds(body: bytes | bytearray) -> tuple[int, int]:
    """(containers, values): at least the JSON's depth, and at least the number of values
    in all its containers together (so also the length of any one list). Every container
    opens with a ``{`` or ``[`` and every value after a container's first follows a
    ``,``: the containers bound the depth, and commas plus containers bound the values.
    Bytes inside strings count too, so the bounds only ever overstate."""
    containers = body.count(b"{") + body.count(b"[")
    return containers, containers + body.count(b",")


def check_json_shape(data: Any, max_depth: int, max_items: int) -> None:
    """Refuse JSON nested deeper than ``max_depth`` or holding more than ``max_items``
    values. One pass that stops at the first excess, so it costs at most ``max_items``
    steps whatever the body."""
    items = 0
    stack: list[tuple[Any, int, str | None]] = [(data, 1, None)]
    while stack:
        node, depth, top = stack.pop()
        if depth > max_depth:
            raise errors.InvalidRequestError(
                f"The JSON body is nested deeper than {max_depth} levels (max_json_depth)",
                param=top,
                code="json_too_deep",
            )
        items += len(node)
        if items > max_items:
            raise _too_many(max_items, top)
        if type(node) is dict:
            for key, child in node.items():
                if type(child) is dict or type(child) is list:
                    stack.append((child, depth + 1, top or key))
        else:
            for child in node:
                if type(child) is dict or type(child) is list:
                    stack.append((child, depth + 1, top))


# --- Content-Encoding ----------------------------------------------------------------------


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
