"""Browsers: CORS and the DNS-rebinding guard.

Why these defaults. A gateway on a user's machine holds the user's uploaded logins
(cookies of Copilot and others). Any web page the user visits can make the browser send
requests to ``http://127.0.0.1:1337``; CORS only stops the page from *reading* answers,
not the request from being made (a "simple" POST needs no preflight). So:

- With an API key configured, any origin is allowed: the key protects the server, and a
  page can only use it if the user gave the page the key.
- Without a key, only loopback origins (``http://localhost:*``, ``127.0.0.1``, ``[::1]``)
  and the server's own origin (its chat page) are allowed, and a request that carries
  another ``Origin`` is refused outright (403), so a foreign page can neither read nor
  drive the gateway.
- Without a key and bound to loopback, a request whose ``Host`` is not a loopback name is
  refused (DNS rebinding: a page whose own host name is re-pointed at 127.0.0.1 would
  otherwise be same-origin with the gateway, and send no foreign ``Origin`` at all).

A loopback name is an IP address in 127.0.0.0/8 or ``::1``, parsed as an address, or
exactly ``localhost``; nothing else (issue 28: a prefix test let ``127.attacker.example``
and ``127.0.0.1%00.evil.example`` through, and an attacker can point such a name at
127.0.0.1). An empty or missing ``Host`` is not a loopback name either.

``--cors-origins`` replaces the default with a list (``*`` for any origin).
Preflights are answered here, before the key check (browsers send them without
credentials), and every answer to an allowed origin carries the ``Access-Control-*``
headers, streamed ones too (set when the response is prepared).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from g4f_server import errors
from g4f_server.web.jsonio import error_response

EXPOSED = ", ".join(
    (
        "X-Request-Id",
        "Retry-After",
        "x-should-retry",
        "X-G4F-Provider",
        "X-G4F-Model",
        "X-G4F-Attempts",
        "X-G4F-Cache",
        "X-G4F-Emulated",
        "X-G4F-Dropped-Tools",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    )
)
METHODS = "GET, POST, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    "Authorization, Content-Type, g4f-api-key, x-api-key, X-Provider-Key, X-Request-Id"
)


def _loopback_name(host: str) -> bool:
    """``host`` (no port; an IPv6 address with or without its brackets) names loopback."""
    host = host.lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:  # a name: only the exact one above is ours
        return False
    # A zone (``::1%eth0``) is not how a browser writes our address: refused.
    return address.is_loopback and getattr(address, "scope_id", None) is None


def _origin_host(origin: str) -> str:
    try:
        return urlsplit(origin).hostname or ""
    except ValueError:
        return ""


@functools.lru_cache(maxsize=64)
def _loopback_host_header(host: str) -> bool:
    """The guard's verdict on a ``Host`` header, as sent (port included). Clients send
    one or two values, so the verdict is cached: parsing it was ~7 us of every request
    (urlsplit and ipaddress). Bounded, as a client may send any number of values."""
    return _loopback_name(_origin_host("//" + host))


@dataclass(slots=True, frozen=True)
class CorsPolicy:
    origins: frozenset[str] | None  # None: the default rule (any with a key, else loopback)
    any_origin: bool
    guard_host: bool  # no key and a loopback bind: the DNS-rebinding guard

    @classmethod
    def build(cls, origins: list[str] | None, *, has_key: bool, bind: str) -> CorsPolicy:
        listed = frozenset(o.rstrip("/") for o in origins) if origins else None
        any_origin = (listed is not None and "*" in listed) or (listed is None and has_key)
        guard = not has_key and _loopback_name(bind)
        return cls(listed, any_origin, guard)

    def allows(self, origin: str) -> bool:
        if self.any_origin:
            return True
        if self.origins is not None:
            return origin.rstrip("/") in self.origins
        return _loopback_name(_origin_host(origin))


def add_headers(policy: CorsPolicy, origin: str, response: web.StreamResponse) -> None:
    """The headers a browser needs to read the answer to ``origin``, if it may (called by
    the edge's on_response_prepare hook for every answer, streamed ones too)."""
    if policy.allows(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED
        response.headers.add("Vary", "Origin")


CORS = web.AppKey("cors", CorsPolicy)


def _refuse(message: str, code: str) -> web.Response:
    # Answered before the edge's error mapping, so the retry hint is added here.
    error = errors.PermissionDeniedError(message, code=code)
    error.headers.update(errors.retry_hints(error.status))
    return error_response(error)


def answer_first(request: web.Request, policy: CorsPolicy) -> web.Response | None:
    """What the edge answers before anything else (before the key check): a refused Host
    or Origin (403), or a preflight's 204; None to handle the request."""
    headers = request.headers
    if policy.guard_host and not _loopback_host_header(headers.get("Host", "")):
        # The header itself: aiohttp's ``request.host`` falls back to this machine's name.
        return _refuse(
            f"Host '{headers.get('Host', '')}' is not this server's: without an API key it only "
            "answers to loopback names (localhost, 127.0.0.1)",
            "host_not_allowed",
        )
    origin = headers.get("Origin")
    if origin is None:
        return None
    if not policy.allows(origin) and not _same_origin(request, origin):
        return _refuse(
            f"Origin '{origin}' is not allowed (see --cors-origins)", "origin_not_allowed"
        )
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": METHODS,
                "Access-Control-Allow-Headers": headers.get(
                    "Access-Control-Request-Headers", ALLOWED_HEADERS
                ),
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )
    return None


def _same_origin(request: web.Request, origin: str) -> bool:
    """Our own pages (the chat page) call us from our own origin, whatever its name: the
    Host guard has already vetted the name when it matters."""
    return _origin_host("//" + request.host) == _origin_host(origin) and origin.rstrip(
        "/"
    ).endswith(request.host)
