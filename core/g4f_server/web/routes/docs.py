"""GET /openapi.json and a self-contained /docs page (no CDN: works offline)."""

from __future__ import annotations

import html

from aiohttp import web

from g4f_server.appkeys import OPENAPI_SPEC
from g4f_server.web.jsonio import json_response
from g4f_server.web.openapi import build_openapi
from g4f_server.web.routes import UNVERSIONED


def _spec(app: web.Application) -> dict:
    cache = app[OPENAPI_SPEC]
    if not cache:
        cache.update(build_openapi(app, UNVERSIONED))
    return cache


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document of every route."""
    return json_response(_spec(request.app))


async def docs_page(request: web.Request) -> web.Response:
    """A readable list of every route with its summary and body schema."""
    spec = _spec(request.app)
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {})
            schema = ", ".join(c["schema"]["$ref"].rsplit("/", 1)[-1] for c in body.values())
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(schema)}</td></tr>"
            )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>g4f-server API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:.3em .8em;"
        "border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>g4f-server {html.escape(spec['info']['version'])}</h1>"
        "<p>OpenAI-compatible API. Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>"
        "<table><tr><th>Method</th><th>Path</th><th>Summary</th><th>Body</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return web.Response(text=page, content_type="text/html")
