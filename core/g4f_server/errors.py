"""Every error the gateway reports, and the one place they become HTTP responses.

Providers raise the ``Provider*`` errors; the router treats any ``ProviderError``
raised before the first streamed byte as "try the next provider". The JSON shape is
OpenAI's: ``{"error": {"message", "type", "code", "param"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

# --- retry hints ------------------------------------------------------------------------
# The one place that decides whether an error answer says "retry" (every protocol, every
# route: the middleware, the connection cap and CORS call ``retry_hints``). The SDKs of
# OpenAI and Anthropic, and the agents built on them (Claude Code), obey
# ``x-should-retry`` before their own rules: without it a wrong key cost Claude Code 11
# requests over 171 s before it told the user (issue 25).
RETRY_HEADER = "x-should-retry"
DEFAULT_RETRY_AFTER = 1  # seconds, for a 429/503 whose cause gave no better estimate
# 4xx answers that a retry can fix: a timed-out upload (408), a conflict (409), a limit (429).
_RETRYABLE_4XX = frozenset({408, 409, 429})
_COME_BACK = frozenset({429, 503})  # "later": with Retry-After


def retry_hints(status: int, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """The retry headers an error answer with ``status`` carries: ``x-should-retry: false``
    on a 4xx that the same request would get again (400, 401, 402, 403, 404, 405, 413,
    422...), ``x-should-retry: true`` and ``Retry-After`` (kept when ``headers`` has one)
    on 429 and 503; nothing on other statuses (the client's own policy decides, e.g. for a
    502 from an upstream)."""
    if status in _COME_BACK:
        hints = {RETRY_HEADER: "true"}
        if not headers or "Retry-After" not in headers:
            hints["Retry-After"] = str(DEFAULT_RETRY_AFTER)
        return hints
    if 400 <= status < 499 and status not in _RETRYABLE_4XX:
        return {RETRY_HEADER: "false"}
    return {}


class G4FError(Exception):
    """Base class: an error with an HTTP status and an OpenAI-style body."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance override of the class default
        self.param = param
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": self.param,
            }
        }


class InvalidRequestError(G4FError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class UnsupportedCapabilityError(InvalidRequestError):
    code = "unsupported_capability"


class AuthenticationError(G4FError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(G4FError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFoundError(G4FError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    type = "model_not_found"
    code = "model_not_found"


class ProviderNotFoundError(NotFoundError):
    type = "provider_not_found"
    code = "provider_not_found"


class MethodNotAllowedError(G4FError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLargeError(G4FError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RequestTimeoutError(G4FError):
    """The client did not send its whole body within ``body_timeout``."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class _RetryAfter(G4FError):
    """A 429 that tells the client when to come back (``Retry-After`` header)."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("Retry-After", str(max(1, round(retry_after))))


class RateLimitError(_RetryAfter):
    """The gateway's own rate limit was hit."""


class OverloadedError(_RetryAfter):
    """The gateway is at its connection or in-flight cap (``admission.py``)."""

    status = 503
    type = "server_error"
    code = "server_overloaded"


class StateUnavailableError(G4FError):
    """The shared state store (Redis, ``--state-url``) cannot be reached; the request
    needs it (a conversation, a stored response, media, a cookie upload)."""

    status = 503
    type = "server_error"
    code = "state_unavailable"


# --- raised by providers -------------------------------------------------------------


class ProviderError(G4FError):
    """The upstream failed or answered something unusable (502)."""

    status = 502
    type = "provider_error"
    code = "provider_error"


class ProviderAuthError(ProviderError):
    """The upstream needs credentials the gateway does not have (cookies, a key)."""

    status = 403
    code = "provider_auth_required"


class ProviderPaymentError(ProviderError):
    """The upstream account has no credit left."""

    status = 402
    code = "provider_payment_required"


class ProviderRateLimitError(_RetryAfter, ProviderError):
    """The upstream rate-limited us; ``retry_after`` seconds is passed on to the client."""


class ProviderTimeoutError(ProviderError):
    """The upstream did not answer in time (504)."""

    status = 504
    code = "upstream_timeout"


class ProviderNotWorkingError(ProviderError):
    """The provider could not be loaded or started."""

    status = 503
    code = "provider_not_working"


class InternalError(G4FError):
    """A bug: the message shown to clients never includes internals."""
