"""The OpenAPI 3.1 document, generated from the app's own route table.

Every route is listed; a handler's docstring is its summary and ``@request_body``
gives its body schema, so a new route is documented by being added.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web

from g4f_server import __version__
from g4f_server.web.handlers import real_handler

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
            "required": ["message", "type", "code", "param"],
        }
    },
    "required": ["error"],
}


def _path_and_params(canonical: str) -> tuple[str, list[dict[str, Any]]]:
    names = re.findall(r"{(\w+)(?::[^}]*)?}", canonical)
    path = re.sub(r"{(\w+)(?::[^}]*)?}", r"{\1}", canonical)
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]
    return path, params


def _tag(path: str) -> str:
    """/v1/models -> models; other paths by their first part (/gui/..., /media/...)."""
    parts = path.strip("/").split("/")
    if parts[0] == "v1" and len(parts) > 1:
        return parts[1]
    return parts[0] or "server"


def _summary(doc: str) -> str:
    """The docstring's first sentence, as plain text: OpenAPI's summary is not Markdown
    (viewers show it as is, in lists), so code spans lose their backticks there; the
    description keeps them, rendered."""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    sentence = re.split(r"(?<=[.:;])\s+(?=[A-Z])", paragraph, maxsplit=1)[0]
    return re.sub(r"`+([^`]+)`+", r"\1", sentence)


def _operation_id(method: str, path: str) -> str:
    """From the method and the path, e.g. ``delete_v1_cookies_domain``; a trailing slash
    is a word (``/chat`` and ``/chat/`` are two routes), so the id is unique per operation."""
    words = re.findall(r"[A-Za-z0-9]+", path)
    if path.endswith("/"):
        words.append("index")
    return "_".join([method.lower(), *words])


def build_openapi(
    app: web.Application,
    aliases: tuple[tuple[str, str, str], ...] = (),
    *,
    key_required: bool = False,
) -> dict[str, Any]:
    """The document of the app's routes; ``aliases`` (method, path, handler) are other
    paths of a listed operation, left out (one operation, one path). With
    ``key_required`` every operation asks for the key (a viewer's "try it" sends it)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    skipped = {(method, _path_and_params(path)[0]) for method, path, _ in aliases}
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*") or route.resource is None:
            continue
        path, params = _path_and_params(route.resource.canonical)
        if (route.method, path) in skipped:
            continue  # the same operation as its /v1 path (said in info.description)
        handler = real_handler(route.handler)
        doc = inspect.cleandoc(handler.__doc__ or "") or handler.__name__
        operation: dict[str, Any] = {
            "summary": _summary(doc),
            # The whole docstring, Markdown (``code`` spans): viewers render it.
            "description": doc,
            "operationId": _operation_id(route.method, path),
            "tags": [_tag(path)],
            "responses": {
                "200": {"description": "OK"},
                "default": {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if params:
            operation["parameters"] = params
        body = getattr(handler, "request_body", None)
        if body is not None:
            model, content_type = body
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    content_type: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                },
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "g4f-server",
            "version": __version__,
            "description": (
                "OpenAI-compatible gateway to free AI providers. The OpenAI routes under "
                "`/v1` (chat completions, completions, embeddings, responses, models, "
                "images, audio) also answer without the `/v1` prefix, for clients whose "
                "base URL has none."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }
    if key_required:  # either header (the open routes answer without one all the same)
        document["security"] = [{"bearer": []}, {"x-api-key": []}]
    return document
