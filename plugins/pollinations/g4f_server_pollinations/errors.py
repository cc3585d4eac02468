"""Turning Pollinations' failures into the gateway's error classes.

The two API generations fail differently: the gateway answers JSON
(``{"error": {"code", "message"}}`` or ``{"error": "...", "message": "..."}``), the legacy
hosts plain text or HTML, and the legacy text host sometimes answers a deprecation notice
*as if it were the model's reply*. Each message says what the operator can do about it.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import orjson

from g4f_server.errors import (
    G4FError,
    InvalidRequestError,
    ProviderAuthError,
    ProviderError,
    ProviderPaymentError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)
from g4f_server.upstream import retry_after
from g4f_server_pollinations.config import DASHBOARD_URL

_KEY_HINT = KEY_HINT = (
    f"set POLLINATIONS_API_KEY on the server, or pass your own key from {DASHBOARD_URL} "
    "as api_key (or the X-Provider-Key header)"
)
# The legacy text host's notice (sent with 200 or 402 instead of an answer).
_NOTICE = re.compile(
    r"IMPORTANT NOTICE|legacy text API is being deprecated|"
    r"Anonymous requests to text\.pollinations\.ai|Please migrate to our new service",
    re.IGNORECASE,
)
_MAX_ERROR_TEXT = 300


# How much answer text at most is held back while it may still be the notice.
NOTICE_WINDOW = 64
# How the notice opens (casefolded), once leading emoji, markdown and spaces are skipped;
# "⚠️ **IMPORTANT NOTICE** ⚠️" is the one seen. Text that leaves all of these openings
# cannot be the notice, so it need not wait for the whole window.
_NOTICE_OPENINGS = (
    "important notice",
    "the pollinations legacy text api is being deprecated",
    "note: the pollinations legacy text api is being deprecated",
    "legacy text api is being deprecated",
    "anonymous requests to text.pollinations.ai",
    "please migrate to our new service",
)


def is_notice(text: str) -> bool:
    return bool(_NOTICE.search(text))


def notice_verdict(text: str) -> bool | None:
    """Whether the start of an answer is the legacy notice: ``True`` it is, ``False`` it
    cannot be, ``None`` too early to tell (hold it back and look again with more text)."""
    if _NOTICE.search(text):
        return True
    if len(text) >= NOTICE_WINDOW:
        return False
    start = next((i for i, char in enumerate(text) if char.isalnum()), None)
    if start is None:  # nothing but emoji, markdown and spaces so far
        return None
    head = text[start:]
    if "\n" in head:  # a whole first line of text, and no notice in it
        return False
    head = head.casefold()
    return None if any(opening.startswith(head) for opening in _NOTICE_OPENINGS) else False


def notice_error(text: str) -> ProviderError:
    return ProviderError(
        "Pollinations answered with a service notice instead of a reply "
        f"({_clip(text)!r}); {_KEY_HINT}",
        code="upstream_notice",
    )


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def message_of(body: bytes | str) -> str:
    """The human part of an upstream error body (JSON in either shape, or text)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        if "<html" in text.lower():
            title = html_title(text)
            return f"an HTML page ({title!r})" if title else "an HTML error page"
        return _clip(text) or "no details"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            code, msg = err.get("code"), err.get("message")
            if code and msg:
                return _clip(f"{code}: {msg}")
            return _clip(str(msg or code or err))
        parts = [str(p) for p in (err, data.get("message")) if p]
        if parts:
            return _clip(" - ".join(dict.fromkeys(parts)))
    return _clip(text)


def html_title(text: str) -> str | None:
    match = re.search(r"<title[^>]*>([^<]*)</title>", text, re.IGNORECASE)
    return _clip(match[1]) if match and match[1].strip() else None


def html_error(kind: str, body: bytes) -> ProviderError:
    """A web page (a CDN's or proxy's) where an answer should be: the upstream failed."""
    text = body.decode("utf-8", "replace")
    title = html_title(text)
    return ProviderError(
        f"Pollinations answered a web page ({kind}) instead of a reply"
        + (f": {title!r}" if title else ""),
        code="upstream_html",
    )


def cloudflare_challenge(status: int, headers: Any) -> ProviderError | None:
    """Cloudflare's bot check (``cf-mitigated: challenge``): the page says nothing useful
    and no key helps; only time, another IP or a proxy does."""
    if str(headers.get("cf-mitigated", "")).lower() != "challenge":
        return None
    return ProviderError(
        f"Pollinations answered {status} with a Cloudflare challenge (cf-mitigated: challenge): "
        "Cloudflare wants this server's IP to prove it is a browser, which a server cannot do; "
        "try again later, or route the calls through another IP with a proxy (G4F_PROXY)",
        code="upstream_cloudflare_challenge",
    )


# What a payment refusal is about, in the upstream's own words (its error message): no
# Pollen left, or an account tier below the model's (the models list a "tier" each).
_BALANCE = re.compile(r"balance|insufficient|top.?up|no pollen|out of pollen|credit", re.I)
_TIER = re.compile(r"\btiers?\b", re.I)


def payment_reason(message: str) -> str | None:
    """``"balance"``, ``"tier"`` or None (the message does not say)."""
    if _BALANCE.search(message):
        return "balance"
    if _TIER.search(message):
        return "tier"
    return None


def for_status(status: int, body: bytes, headers: Any, *, keyed: bool) -> G4FError:
    """The error for an upstream non-2xx answer."""
    if challenge := cloudflare_challenge(status, headers):
        return challenge
    msg = message_of(body)
    text = body.decode("utf-8", "replace")
    where = f"Pollinations answered {status}: {msg}"
    if status == 400:
        return InvalidRequestError(where, code="upstream_bad_request")
    if status == 401:
        if keyed:
            return ProviderAuthError(f"{where}. The Pollinations key was rejected; {_KEY_HINT}")
        return ProviderAuthError(f"{where}. This needs a Pollinations key; {_KEY_HINT}")
    payment = payment_reason(msg)
    if status == 402 or (status == 403 and payment == "balance"):
        if is_notice(text):
            return ProviderPaymentError(
                f"Pollinations' legacy API refused the call ({msg}); {_KEY_HINT}"
            )
        if not keyed:  # no key, so no account: the model or option is not free
            return ProviderPaymentError(
                f"{where}. Pollinations wants payment for this anonymous call (the model or "
                f"option is not free): use a free model, or {_KEY_HINT}"
            )
        if payment == "tier":  # Pollen does not help: the account's tier does not reach
            return ProviderAuthError(
                f"{where}. The Pollinations key's tier is too low for this model or option: "
                f"use a model of its tier, or a key of a higher tier (see {DASHBOARD_URL})"
            )
        if payment == "balance":
            return ProviderPaymentError(
                f"{where}. The Pollinations account has no Pollen left: top it up at "
                f"{DASHBOARD_URL}"
            )
        return ProviderPaymentError(
            f"{where}. Pollinations wants payment for this call: the key's account may have "
            f"no Pollen left (top it up at {DASHBOARD_URL}), or its tier may not include this "
            "model or option"
        )
    if status == 403:
        if "cloudflare" in text.lower() or "cloudflare" in str(headers.get("server", "")).lower():
            return ProviderError(f"{where} (blocked by Cloudflare; try again later or via a proxy)")
        return ProviderAuthError(
            f"{where}. The model or option needs a higher Pollinations tier; {_KEY_HINT}"
        )
    if status == 429:
        return ProviderRateLimitError(
            f"{where}. Pollinations rate-limited this server"
            + ("" if keyed else f"; anonymous use is limited per IP, {_KEY_HINT}"),
            retry_after=retry_after(headers.get("Retry-After")),
        )
    if status == 504:
        return ProviderTimeoutError(where)
    return ProviderError(where)


def for_exception(exc: BaseException, what: str) -> G4FError:
    """The error for a transport failure (no HTTP answer at all)."""
    if isinstance(exc, TimeoutError):
        return ProviderTimeoutError(f"Pollinations did not answer in time ({what})")
    if isinstance(exc, aiohttp.ClientError):
        return ProviderError(f"Cannot reach Pollinations ({what}): {type(exc).__name__}: {exc}")
    return ProviderError(f"Pollinations call failed ({what}): {type(exc).__name__}")
