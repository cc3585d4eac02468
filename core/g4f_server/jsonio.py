"""JSON in and out of HTTP with orjson (request-body validation is in ``validation.py``)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from g4f_server import errors


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def json_response(
    obj: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj), status=status, headers=headers, content_type="application/json"
    )


def error_response(error: errors.G4FError) -> web.Response:
    return json_response(error.to_dict(), status=error.status, headers=error.headers)


async def read_json(request: web.Request) -> dict[str, Any]:
    body = await request.read()
    if not body.strip():
        raise errors.InvalidRequestError("The request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidRequestError("The request body must be a JSON object")
    return data
