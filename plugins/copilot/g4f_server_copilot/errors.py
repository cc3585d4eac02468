"""Turning upstream failures into the kernel's provider errors, with advice a user can act on."""

from __future__ import annotations

import re
from typing import Any

from g4f_server.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
)
from g4f_server.upstream import retry_after
from g4f_server_copilot import fields

LOGIN_HINT = (
    "upload your copilot.microsoft.com browser cookies or a HAR file "
    "(POST /v1/upload_cookies), or pass the access token as the provider api_key"
)
VISION_NEEDS_LOGIN = (
    "Copilot vision needs cookies from a logged-in browser: images are uploaded through "
    "an endpoint that only accepts signed-in users. To use it, " + LOGIN_HINT + "."
)

TOKEN_REFUSED = (
    "Copilot refused the access token on its REST calls (401), so this conversation was "
    "started with the cookies alone, as an identity that cannot upload images. Upload a "
    "fresh HAR file of a logged-in browser to use vision."
)


class ConversationLost(ProviderError):
    """The upstream no longer knows the conversation id we sent ("unknown conversationId")."""


_LOST = re.compile(
    r"(unknown|invalid|expired)\s+conversation|conversation\s*id\s+(is\s+)?(unknown|not found)",
    re.IGNORECASE,
)


def from_http_status(what: str, status: int, body: str, headers: Any = None) -> ProviderError:
    """An error for a non-2xx answer of a REST call (session start, attachment upload)."""
    snippet = " ".join(body.split())[:200]
    if status == 401:
        return ProviderAuthError(
            f"Copilot {what} was refused (401): the session or login is invalid or expired; "
            f"{LOGIN_HINT}."
        )
    if status == 403:
        return ProviderAuthError(
            f"Copilot {what} was blocked (403), likely by its bot protection; {LOGIN_HINT} "
            "(including cf_clearance)."
        )
    if status == 429:
        retry = retry_after(headers.get("Retry-After")) if headers else None
        return ProviderRateLimitError(f"Copilot {what} was rate-limited (429).", retry_after=retry)
    return ProviderError(f"Copilot {what} failed with HTTP {status}: {snippet}")


# errorCode values reported in the wild (upstreams.md 1.13) and what they mean to a user.
_CODES: dict[str, str] = {
    "chat-service-unavailable": (
        "Copilot chat is not available to anonymous users from this server's region; "
        "log in (" + LOGIN_HINT + ") or route through a proxy in a supported region"
    ),
    # Only a guess when the upstream gives no reason: its message, when present, wins.
    "invalid-event": (
        "Copilot rejected the request (invalid-event); this usually means the server's IP "
        "needs bot clearance: " + LOGIN_HINT + " (including cf_clearance), or use a proxy"
    ),
}


def from_error_frame(frame: dict[str, Any]) -> ProviderError:
    """An error for an ``error`` event on the chat socket."""
    code = fields.text(frame, "errorCode") or fields.text(frame, "code")
    detail = fields.text(frame, "message") or fields.text(frame, "text")
    error_code = f"copilot_{code.replace('-', '_')}" if code in _CODES else None
    if code in _CODES and not detail:
        return ProviderError(_CODES[code] + ".", code=error_code)
    if code == "invalid-event" and _LOST.search(detail):
        return ConversationLost(
            f"Copilot no longer knows this conversation (invalid-event: {detail}).",
            code="copilot_conversation_lost",
        )
    if code == "invalid-event":
        return ProviderError(
            f"Copilot rejected the request (invalid-event: {detail}).", code=error_code
        )
    if code in _CODES:
        return ProviderError(f"{_CODES[code]} ({detail}).", code=error_code)
    if code == "challenge-failed":
        return ProviderAuthError(
            "Copilot did not accept the answer to its anti-bot challenge (challenge-failed); "
            "an uploaded cf_clearance may have expired or come from another IP or browser: "
            "upload a fresh one (POST /v1/upload_cookies)"
        )
    lowered = code.lower()
    if "rate" in lowered or "throttl" in lowered or "too-many" in lowered:
        return ProviderRateLimitError(f"Copilot is rate-limiting this server ({code}).")
    if "auth" in lowered or "token" in lowered or "login" in lowered:
        return ProviderAuthError(f"Copilot needs a valid login ({code}); {LOGIN_HINT}.")
    if not code:
        return ProviderError(
            "Copilot reported an error" + (f": {detail}" if detail else " without a reason")
        )
    return ProviderError(f"Copilot reported an error: {code}" + (f" ({detail})" if detail else ""))
