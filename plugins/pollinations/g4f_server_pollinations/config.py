"""Settings read from the environment once, at first use (a restart applies a change), plus
the choice between the two API generations."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from g4f_server.provider import ProviderContext

LEGACY_TEXT_URL = "https://text.pollinations.ai"
LEGACY_IMAGE_URL = "https://image.pollinations.ai"
GEN_URL = "https://gen.pollinations.ai"
DASHBOARD_URL = "https://enter.pollinations.ai"
# Longest URL we send (prompt or text in the path): the hosts answer 414 above about 4 KB.
MAX_URL = 4000

# Keys minted by gpt4free's own proxy, not by Pollinations: sending them to the gateway
# can only fail, so they count as "no key".
_FOREIGN_KEY_PREFIXES = ("g4f_", "gfs_")


def _env_float(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ[name]))
    except (KeyError, ValueError):
        return default


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ[name]))
    except (KeyError, ValueError):
        return default


@dataclass(slots=True, frozen=True)
class Settings:
    text_url: str  # legacy anonymous chat host
    image_url: str  # legacy anonymous image host
    gen_url: str  # gateway host (keyed calls, model lists, audio)
    env_key: str | None
    models_ttl: float
    models_timeout: float
    anon_text_concurrency: int
    anon_image_concurrency: int
    # Seconds between the starts of two anonymous calls to one legacy host (2.7: text one
    # per 3 s, images one per 5 s per IP); quicker calls get an upstream 429.
    anon_text_interval: float
    anon_image_interval: float
    queue_timeout: float  # how long a request may wait for a free anonymous slot


@functools.cache
def settings() -> Settings:
    """Cached: reading eleven variables cost ~15 us, a few per cent of a proxied request.
    Tests that change the environment call ``settings.cache_clear()``."""
    return Settings(
        text_url=os.environ.get("POLLINATIONS_TEXT_URL", LEGACY_TEXT_URL).rstrip("/"),
        image_url=os.environ.get("POLLINATIONS_IMAGE_URL", LEGACY_IMAGE_URL).rstrip("/"),
        gen_url=os.environ.get("POLLINATIONS_GEN_URL", GEN_URL).rstrip("/"),
        env_key=os.environ.get("POLLINATIONS_API_KEY") or None,
        models_ttl=_env_float("POLLINATIONS_MODELS_TTL", 3600.0),
        models_timeout=_env_float("POLLINATIONS_MODELS_TIMEOUT", 4.0),
        anon_text_concurrency=_env_int("POLLINATIONS_ANON_TEXT_CONCURRENCY", 1),
        anon_image_concurrency=_env_int("POLLINATIONS_ANON_IMAGE_CONCURRENCY", 1),
        anon_text_interval=_env_float("POLLINATIONS_ANON_TEXT_INTERVAL", 3.0),
        anon_image_interval=_env_float("POLLINATIONS_ANON_IMAGE_INTERVAL", 5.0),
        queue_timeout=_env_float("POLLINATIONS_QUEUE_TIMEOUT", 60.0),
    )


def api_key(ctx: ProviderContext, cfg: Settings) -> str | None:
    """The key for this call: the client's own (ctx.api_key) wins over the server's env key."""
    for key in (ctx.api_key, cfg.env_key):
        if key and not key.startswith(_FOREIGN_KEY_PREFIXES):
            return key.strip()
    return None


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}
