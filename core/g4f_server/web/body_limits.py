"""What one request body may be: read once, within a time limit, and of a bounded shape.

Every JSON route reads its body through ``jsonio.read_json``, which uses these, so a new
protocol inherits the limits by reading its body the same way. The limits are settings
(``docs/configuration.md``); each refusal is a 400, 408 or 413 naming its setting.

Why each exists (issue 17): the work a body causes must stay in proportion to what the
server allows, or one request freezes the event loop for everyone:
- ``body_timeout``: a client that announces a body and then goes silent held its
  connection forever;
- ``max_json_depth``, ``max_json_items``: deeply nested or huge-count JSON parses fast in
  C but costs seconds in every later pass (validation, copies, serializing history), and
  orjson cannot serialize more than 255 levels, so deeper history could not be stored;
- ``max_messages``, ``max_content_parts``: checked by the chat schema before it validates
  the messages one by one (``g4f_server.requests.chat_limits``);
- ``max_embedding_inputs``: the inputs of one embeddings request, checked by its schema
  before they are validated one by one (a token-id list counts as one input; its ids are
  values, bounded by ``max_json_items``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.web.inflate import content_encoding, inflate


def too_large(limit: int, setting: str = "max_body_size") -> errors.PayloadTooLargeError:
    return errors.PayloadTooLargeError(f"Request body too large (limit {limit} bytes, {setting})")


async def read_body(request: web.Request) -> bytearray:
    """The whole body in one buffer (no second copy), within ``max_body_size`` bytes and
    ``body_timeout`` seconds; a gzip or deflate body is inflated (``inflate.py``), within
    ``max_body_size`` too."""
    config = request.app[CONFIG]
    # The chat validators read these (the contract's request models); imported here, not
    # at the top, so that pydantic loads with the first body, not with the idle server.
    from g4f_server.requests import set_chat_limits, set_embedding_limits

    set_chat_limits(config.max_messages, config.max_content_parts)
    set_embedding_limits(config.max_embedding_inputs)
    limit = config.max_body_size
    coding = content_encoding(request.headers.get("Content-Encoding"))
    body = await _read_raw(request, config.body_timeout, limit)
    if coding is not None:
        return await inflate(body, coding, limit)
    return body


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


def _too_many(max_items: int, param: str | None = None) -> errors.InvalidRequestError:
    return errors.InvalidRequestError(
        f"The JSON body holds more than {max_items} values (max_json_items)",
        param=param,
        code="json_too_large",
    )


def precheck_json_size(body: bytearray, max_items: int) -> None:
    """Refuse, before parsing, a body with more than ``max_items`` objects: parsing
    600,000 small objects alone holds the event loop for about half a second. ``{"``
    starts an object with a key in compact JSON (what clients send); inside a string a
    quote is escaped, so the bytes appear there only where a string ends in ``{``.
    Counting them costs ~10 ms for 30 MiB, in C. JSON with a space after ``{`` escapes
    this pre-check and meets the exact count (``check_json_shape``) after parsing."""
    if body.count(b'{"') > max_items:
        raise _too_many(max_items)


def shape_bounded_by_bytes(body: bytearray, max_depth: int, max_items: int) -> bool:
    """True when the bytes alone prove the JSON within both bounds, so that
    ``check_json_shape`` can be skipped: true of a chat body of up to a few dozen
    messages under the defaults (~1 us here against ~10 us there); longer ones walk.
    Every container opens with a ``{`` or ``[`` and every value after a container's
    first follows a ``,``: the containers bound the depth, and commas plus containers
    bound the values. Bytes inside strings count too, so the bounds only ever overstate."""
    containers = body.count(b"{") + body.count(b"[")
    return containers <= max_depth and containers + body.count(b",") <= max_items


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
