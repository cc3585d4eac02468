"""JSON in and out of HTTP with orjson (request-body validation is in ``validation.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.web.body_limits import (
    check_json_shape,
    precheck_json_size,
    read_body,
    shape_bounded_by_bytes,
)

# orjson's function itself, not a wrapper: the stream renderers call it for every chunk
# (a Responses stream ~28 times), and a Python frame per call was ~0.5 us each.
dumps: Callable[[Any], bytes] = orjson.dumps


def json_response(
    obj: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj), status=status, headers=headers, content_type="application/json"
    )


def error_response(error: errors.G4FError) -> web.Response:
    body = error.to_dict()
    try:
        encoded = orjson.dumps(body)
    except TypeError:  # a message quoting client bytes that are not UTF-8 (a filename)
        body["error"]["message"] = body["error"]["message"].encode(errors="replace").decode()
        encoded = orjson.dumps(body)
    return web.Response(
        body=encoded, status=error.status, headers=error.headers, content_type="application/json"
    )


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, within the body limits (``body_limits.py``)."""
    body = await read_body(request)
    if not body or body.isspace():
        raise errors.InvalidRequestError("The request body is empty; send a JSON object")
    config = request.app[CONFIG]
    precheck_json_size(body, config.max_json_items)
    bounded = shape_bounded_by_bytes(body, config.max_json_depth, config.max_json_items)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
    del body  # the parsed objects are the one copy from here on
    if not isinstance(data, dict):
        raise errors.InvalidRequestError("The request body must be a JSON object")
    if not bounded:
        check_json_shape(data, config.max_json_depth, config.max_json_items)
    return data
