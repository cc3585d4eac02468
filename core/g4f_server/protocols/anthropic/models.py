"""GET /v1/models and /v1/models/{model}: OpenAI's shape (web/routes/models.py), or
Anthropic's when the caller sends ``anthropic-version`` (the Anthropic SDKs always do):
``{"data": [{"type": "model", "id", "display_name", "created_at"}], "has_more",
"first_id", "last_id"}`` with Anthropic's paging (``limit``, ``after_id``,
``before_id``), and errors in Anthropic's shape."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.protocols.anthropic.render import error_body
from g4f_server.providers.registry import REGISTRY
from g4f_server.web.jsonio import json_response
from g4f_server.web.routes import models

VERSION_HEADER = "anthropic-version"
_EPOCH = "1970-01-01T00:00:00Z"  # providers give no release dates (OpenAI's "created": 0)
_DEFAULT_LIMIT, _MAX_LIMIT = 20, 1000  # Anthropic's


def anthropic_model(item: dict[str, Any]) -> dict[str, Any]:
    # A provider name stands for its default model: its label reads better than the name.
    name = item["owned_by"] if item.get("provider") else item["id"]
    return {"type": "model", "id": item["id"], "display_name": name, "created_at": _EPOCH}


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return _DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_LIMIT:
        raise errors.InvalidRequestError(
            f"limit must be an integer from 1 to {_MAX_LIMIT}", param="limit"
        )
    return int(raw)


def _page(request: web.Request) -> dict[str, Any]:
    """One page of the list: after ``after_id`` (or before ``before_id``), ``limit`` long."""
    data = [anthropic_model(item) for item in models.model_list(request.app[REGISTRY])]
    ids = [item["id"] for item in data]
    limit = _limit(request)
    after, before = request.query.get("after_id"), request.query.get("before_id")
    for name, cursor in (("after_id", after), ("before_id", before)):
        if cursor is not None and cursor not in ids:
            raise errors.InvalidRequestError(f"Unknown {name} '{cursor}'", param=name)
    if before is not None:
        end = ids.index(before)
        start = max(0, end - limit)
        has_more = start > 0
    else:
        start = ids.index(after) + 1 if after is not None else 0
        end = start + limit
        has_more = end < len(ids)
    page = data[start:end]
    return {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def _anthropic_error(error: errors.G4FError) -> web.Response:
    return json_response(error_body(error), status=error.status, headers=error.headers)


async def list_models(request: web.Request) -> web.Response:
    """List every model (OpenAI's shape, or Anthropic's with an `anthropic-version`
    header)."""
    if VERSION_HEADER not in request.headers:
        return await models.list_models(request)
    try:
        return json_response(_page(request))
    except errors.G4FError as error:
        return _anthropic_error(error)


async def get_model(request: web.Request) -> web.Response:
    """Describe one model (OpenAI's shape, or Anthropic's with `anthropic-version`)."""
    if VERSION_HEADER not in request.headers:
        return await models.get_model(request)
    try:
        item = models.describe_model(request.app[REGISTRY], request.match_info["model"])
    except errors.G4FError as error:
        return _anthropic_error(error)
    return json_response(anthropic_model(item))
