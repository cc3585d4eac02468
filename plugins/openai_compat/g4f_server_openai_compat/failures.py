"""Upstream failures as the gateway's errors, and what the plugin remembers about them.

Two memories live in the provider's ``ctx.state`` (one per upstream, as long as the
server runs), keyed by a fingerprint of the key used, so that a client passing its own
key is judged on that key alone:

- a refused key (401/403): every later request with that key fails at once, without
  calling the upstream again, until the server restarts or the key changes;
- a cooldown (429): until the time the upstream asked us to wait, requests fail at once
  with the same ``ProviderRateLimitError``, so the kernel moves on to another provider
  serving the model instead of spending a round trip on a known refusal.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
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
from g4f_server.upstream import parse_duration, retry_delay
from g4f_server_openai_compat.upstreams import Upstream

MAX_MESSAGE = 300
# A 429 that says nothing about when to come back: wait this long before asking again.
DEFAULT_COOLDOWN = 10.0


def fingerprint(key: str | None) -> str:
    """Which key a memory is about, without keeping the key itself."""
    if not key:
        return "-"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def check_memory(state: dict[str, Any], up: Upstream, key: str | None) -> None:
    """Raise at once what the upstream would answer anyway (a refused key, a cooldown)."""
    refused_keys, cooldown = state.get("refused_keys"), state.get("cooldown")
    if not refused_keys and not cooldown:
        return  # nothing remembered (the usual case): no key to fingerprint
    who = fingerprint(key)
    refused = (refused_keys or {}).get(who)
    if refused is not None:
        raise ProviderAuthError(refused, code="upstream_key_refused")
    until = (cooldown or {}).get(who)
    if until is not None:
        left = until - time.monotonic()
        if left > 0:
            raise ProviderRateLimitError(
                f"{up.provider} is rate-limited: cooling down for {left:.0f}s more "
                "(the upstream asked us to wait)",
                retry_after=left,
            )
        del state["cooldown"][who]


def message_of(body: bytes) -> str:
    """The human part of an error body: OpenAI's ``{"error": {"message"}}``, a bare
    ``{"error": "..."}`` or ``{"message": ...}``, Gemini's list of those, or text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _clip(text) or "no details"
    if isinstance(data, list) and data:  # Gemini answers [{"error": {...}}]
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg") or err.get("detail")
            if msg:
                return _clip(str(msg))
        elif isinstance(err, str) and err:
            return _clip(err)
        if isinstance(data.get("message"), str):
            return _clip(data["message"])
        if isinstance(data.get("detail"), str):  # FastAPI-style servers (vLLM)
            return _clip(data["detail"])
    return _clip(text) or "no details"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def rate_limit_delay(up: Upstream, headers: Mapping[str, str]) -> float | None:
    """How long the upstream asked us to wait: ``Retry-After`` and OpenAI's
    ``x-ratelimit-reset-*`` (``retry_delay``), then the preset's own reset headers
    (Cerebras: ``x-ratelimit-reset-tokens-minute`` in seconds), spent ones first."""
    delay = retry_delay(headers)
    if delay is not None:
        return delay
    resets = []
    for reset, remaining in up.preset.reset_headers:
        seconds = parse_duration(headers.get(reset))
        if seconds is not None:
            resets.append((headers.get(remaining) == "0", seconds))
    spent = [s for is_spent, s in resets if is_spent]
    if spent or resets:
        return max(spent or [s for _, s in resets])
    return None


def for_status(
    state: dict[str, Any], up: Upstream, key: str | None, status: int, body: bytes, headers: Any
) -> G4FError:
    """The error for an upstream non-2xx answer, remembering refusals and cooldowns."""
    msg = message_of(body)
    where = f"{up.provider} answered {status}: {msg}"
    if status in (401, 403) and (status == 401 or up.preset.forbidden_is_auth):
        text = f"{where}. {up.provider} refused the API key from {up.key_source}: check it" + (
            f" ({up.preset.key_hint})" if up.preset.key_hint else ""
        )
        state.setdefault("refused_keys", {})[fingerprint(key)] = text
        return ProviderAuthError(text, code="upstream_key_refused")
    if status == 429:
        delay = rate_limit_delay(up, headers)
        until = time.monotonic() + (DEFAULT_COOLDOWN if delay is None else delay)
        state.setdefault("cooldown", {})[fingerprint(key)] = until
        return ProviderRateLimitError(f"{where} (rate limited)", retry_after=delay)
    if status == 402:
        return ProviderPaymentError(f"{where}. The {up.provider} account has no credit left")
    if status in (400, 403, 413, 422):
        return InvalidRequestError(where, code="upstream_bad_request")
    if status in (408, 504):
        return ProviderTimeoutError(where)
    return ProviderError(where)


def for_exception(up: Upstream, exc: BaseException, what: str) -> G4FError:
    """The error for a transport failure: no HTTP answer at all."""
    if isinstance(exc, TimeoutError):
        return ProviderTimeoutError(f"{up.provider} did not answer in time ({what})")
    if isinstance(exc, aiohttp.ClientError):
        return ProviderError(f"Cannot reach {up.provider} ({what}): {type(exc).__name__}: {exc}")
    return ProviderError(f"{up.provider} call failed ({what}): {type(exc).__name__}")
