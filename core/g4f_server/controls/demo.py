"""Demo mode (``--demo``): the chat page for the public, with what is risky there off.

On top of ``--gui`` (docs/gui.md#demo-mode):
- the cookie routes (upload, list, delete) answer 403: visitors must not log the shared
  server into an account, nor see or remove whose login it uses;
- per-request provider keys (a body ``api_key``, ``X-Provider-Key``, a second word after
  ``Bearer``) and the request's ``proxy`` answer 403;
- a per-client request limit: ``AppConfig`` adds ``[limits.per_client] rpm = demo_rpm``
  unless the operator's ``[limits]`` has its own, and the kernel's rate limiter
  (``limits.py``) counts it, so it is shared through Redis with a state URL.

Every refusal is a ``PermissionDeniedError`` with code ``demo_mode``.
"""

from __future__ import annotations

from aiohttp import web

from g4f_server import errors

COOKIE_PATHS = ("/v1/upload_cookies", "/v1/cookies")


def refused(what: str) -> errors.PermissionDeniedError:
    message = f"{what}: not available on this public demo"
    return errors.PermissionDeniedError(message, code="demo_mode")


def check_request(request: web.Request) -> None:
    """The demo's checks on the path and headers; called by the middleware. The body's
    ``api_key`` and ``proxy`` are checked when the pipeline admits a request
    (``check_body``, through the observers seam)."""
    if request.path.startswith(COOKIE_PATHS):
        raise refused("Cookie upload, listing and deletion")
    auth = request.headers.get("Authorization", "")
    if request.headers.get("X-Provider-Key") or len(auth.split()) > 2:
        raise refused("Per-request provider keys")


def check_body(body: object) -> None:
    """A request body's provider key or proxy (a chat, image or audio request)."""
    if getattr(body, "proxy", None):
        raise refused("The 'proxy' field")
    if getattr(body, "api_key", None):
        raise refused("Per-request provider keys")
