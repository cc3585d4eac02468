"""Where the upstream lives and how long we wait for it.

Everything is read at call time (not import time) so tests can point the plugin at the
emulator with ``COPILOT_URL`` and shrink the timeouts with environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_URL = "https://copilot.microsoft.com"

# Fingerprints of the two client flavours (upstreams.md 1.3). The app flavour needs no
# cookies and is the anonymous path; the web flavour carries a browser's login.
APP_USER_AGENT = "CopilotNative/30.0.440505001-prod (Android 14; Google; Pixel 8 Pro)"
WEB_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36"
)
SEC_CH_UA = '"Chromium";v="136", "Google Chrome";v="136", "Not.A/Brand";v="99"'


def base_url() -> str:
    return os.environ.get("COPILOT_URL", DEFAULT_URL).rstrip("/")


def ws_url() -> str:
    """The chat socket's URL (query string added per connection)."""
    base = base_url()
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/c/api/chat"
    return "ws://" + base.removeprefix("http://") + "/c/api/chat"


def host() -> str:
    return base_url().split("://", 1)[-1].split("/", 1)[0]


def max_login_turns() -> int:
    """Concurrent turns allowed on the uploaded login (COPILOT_MAX_LOGIN_TURNS, default 4)."""
    return max(1, int(_env_float("COPILOT_MAX_LOGIN_TURNS", 4)))


def max_message_chars() -> int:
    """Characters per message (COPILOT_MAX_MESSAGE_CHARS, default 10,240: the limit of
    Copilot's web composer; longer texts fail upstream)."""
    return max(1, int(_env_float("COPILOT_MAX_MESSAGE_CHARS", 10_240)))


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


@dataclass(slots=True, frozen=True)
class Timeouts:
    """Seconds for each phase of a turn; each is also capped by the request's timeout."""

    start: float  # POST /c/api/start and /c/api/attachments
    connect: float  # WebSocket handshake + the server's "connected"
    first_event: float  # from our "send" to the first answer event
    idle: float  # longest silence between two events once the answer flows

    @classmethod
    def load(cls, cap: float) -> Timeouts:
        def pick(name: str, default: float) -> float:
            return max(0.01, min(_env_float(name, default), cap))

        return cls(
            start=pick("COPILOT_START_TIMEOUT", 20.0),
            connect=pick("COPILOT_CONNECT_TIMEOUT", 15.0),
            # Think Deeper can be quiet for a while before its first thought.
            first_event=pick("COPILOT_FIRST_EVENT_TIMEOUT", 90.0),
            idle=pick("COPILOT_IDLE_TIMEOUT", 90.0),
        )
