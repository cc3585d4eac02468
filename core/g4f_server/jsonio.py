"""JSON in and out of HTTP: orjson encoding and request-body validation into pydantic models."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from g4f_server import errors

M = TypeVar("M", bound=BaseModel)


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


def validation_error(exc: ValidationError) -> errors.InvalidRequestError:
    """The first problem with its location as ``param`` (e.g. ``messages.0.role``)."""
    problems = exc.errors(include_url=False, include_input=False)
    first = problems[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    message = first["msg"]
    if param:
        message = f"Invalid value for '{param}': {message}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return errors.InvalidRequestError(message, param=param)


def parse_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


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
