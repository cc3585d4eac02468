"""GET / and /chat/ (the chat page with --gui; without it / is a small index) and the
page's files under /gui/{version}/.

The page is sent with a Content-Security-Policy that allows scripts, styles and
connections from this server only and no inline script: model output that slipped past
the sanitizer still could not run or reach another host.
"""

from __future__ import annotations

from aiohttp import web

from g4f_server import __version__, errors
from g4f_server.appkeys import CONFIG
from g4f_server.controls.apikeys import KEYRING
from g4f_server.gui.assets import Asset, bundle, index_page, page, status_page

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_SECURITY = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
FOREVER = "public, max-age=31536000, immutable"


def send_asset(request: web.Request, asset: Asset, cache: str, csp: str = CSP) -> web.Response:
    """A page or file of ours: ETag revalidation, gzip when the client takes it, and the
    security headers with the page's content security policy (/docs: its own)."""
    headers = {**_SECURITY, "Content-Security-Policy": csp}
    headers.update({"Cache-Control": cache, "ETag": asset.etag, "Vary": "Accept-Encoding"})
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = asset.content_type
    return web.Response(body=body, headers=headers)


def _chat(request: web.Request) -> web.Response:
    # no-cache: revalidated on every load (cheap, ETag), so a new release is picked up.
    demo = request.app[CONFIG].demo
    return send_asset(request, page(demo=demo, key_required=KEYRING in request.app), "no-cache")


async def index(request: web.Request) -> web.Response:
    """The chat page (with --gui), else what this server is and where to go."""
    if request.app[CONFIG].gui:
        return _chat(request)
    return web.Response(
        body=index_page(__version__),
        content_type="text/html",
        headers={**_SECURITY, "Cache-Control": "no-cache"},
    )


async def chat_page(request: web.Request) -> web.Response:
    """The chat page (with --gui)."""
    if not request.app[CONFIG].gui:
        raise errors.NotFoundError(
            "The chat page is off: start the server with --gui (or G4F_GUI=true)",
            code="gui_disabled",
        )
    return _chat(request)


async def asset(request: web.Request) -> web.Response:
    """A file of the chat page (scripts, styles, licences of the vendored scripts)."""
    b = bundle()
    found = b.files.get(request.match_info["path"])
    if found is None or not request.app[CONFIG].gui:
        raise errors.NotFoundError(f"No such file: {request.path}", code="unknown_route")
    # An old page asking for an old version gets today's file, not to be kept.
    cache = FOREVER if request.match_info["version"] == b.version else "no-cache"
    return send_asset(request, found, cache)


async def chat_redirect(request: web.Request) -> web.Response:
    """/chat -> /chat/ (the page's own address)."""
    raise web.HTTPPermanentRedirect("/chat/")


async def status(request: web.Request) -> web.Response:
    """The status page, with or without --gui: a static page that asks for the key and
    reads /v1/status with it (the data is behind the key like the API)."""
    return send_asset(request, status_page(), "no-cache")
