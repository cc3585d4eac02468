"""GET /openapi.json and /docs: the interactive API reference (RapiDoc, vendored under
gui/apidocs/: no CDN, works offline), with "try it" on every operation.

Both are open without the API key, as the chat page's files are: the document describes
this open-source server's routes and nothing of its data, and the viewer must read it
before it can ask for the key that "try it" then sends.
"""

from __future__ import annotations

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import OPENAPI_SPEC
from g4f_server.controls.apikeys import KEYRING
from g4f_server.gui.assets import docs_bundle, docs_page
from g4f_server.web.jsonio import json_response
from g4f_server.web.openapi import build_openapi
from g4f_server.web.routes import UNVERSIONED
from g4f_server.web.routes.gui import FOREVER, send_asset

# As the chat page's policy, plus inline styles: RapiDoc sets style attributes. No
# request leaves the server (fonts included: the page turns RapiDoc's font loading off).
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


def _spec(app: web.Application) -> dict:
    cache = app[OPENAPI_SPEC]
    if not cache:
        cache.update(build_openapi(app, UNVERSIONED, key_required=KEYRING in app))
    return cache


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document of every route."""
    return json_response(_spec(request.app))


async def docs_page_route(request: web.Request) -> web.Response:
    """The interactive API reference: every operation, its body schema, and "try it"."""
    return send_asset(request, docs_page(), "no-cache", CSP)


async def docs_asset(request: web.Request) -> web.Response:
    """A file of the API reference (the viewer, its licences)."""
    b = docs_bundle()
    found = b.files.get(request.match_info["path"])
    if found is None:
        raise errors.NotFoundError(f"No such file: {request.path}", code="unknown_route")
    cache = FOREVER if request.match_info["version"] == b.version else "no-cache"
    return send_asset(request, found, cache, CSP)
