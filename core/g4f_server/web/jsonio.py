"""JSON answers with orjson (a request body is read, parsed and validated in ``body.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from g4f_server import errors

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
