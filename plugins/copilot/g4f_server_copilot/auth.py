"""Who we are towards Copilot: anonymous (app flavour) or the user's browser login (web).

Credentials come from the kernel's cookie store (JSON cookie exports or HAR files for the
Copilot domains). A HAR also yields the Bearer access token; until the kernel exposes it
separately, it is read from pseudo-cookies the HAR import stores next to the real
cookies (names in ``TOKEN_KEYS`` / ``IDENTITY_KEYS``). The client's per-request provider
key (body ``api_key`` or ``X-Provider-Key``) also counts as an access token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from g4f_server.provider import ProviderContext

COOKIE_DOMAINS = ("copilot.microsoft.com", ".microsoft.com")
ANON_COOKIE = "__Host-copilot-anon"
TOKEN_KEYS = ("access_token", "accessToken", "__g4f_access_token")
IDENTITY_KEYS = ("x-useridentitytype", "user_identity_type", "__g4f_identity_type")

Flavour = Literal["app", "web"]


@dataclass(slots=True)
class Credentials:
    cookies: dict[str, str] = field(default_factory=dict)
    access_token: str | None = None
    identity_type: str | None = None

    @property
    def logged_in(self) -> bool:
        # Only a token proves a login: attachments (vision) need it, cookies alone do not.
        return bool(self.access_token)

    @property
    def flavour(self) -> Flavour:
        # Anything from the user's browser means "be that browser"; nothing means the
        # cookie-less Android-app client, which is the path that works anonymously.
        return "web" if self.cookies or self.access_token else "app"


def load(ctx: ProviderContext) -> Credentials:
    cookies: dict[str, str] = {}
    # Broader domain first so cookies of the exact host win.
    for domain in reversed(COOKIE_DOMAINS):
        try:
            cookies.update(ctx.cookies(domain) or {})
        except Exception as exc:  # the cookie store is the kernel's; never fail a chat on it
            ctx.log.warning("copilot.cookies_unreadable", domain=domain, error=str(exc))
    token = _pop_first(cookies, TOKEN_KEYS)
    identity = _pop_first(cookies, IDENTITY_KEYS)
    if ctx.api_key:
        token = ctx.api_key.removeprefix("Bearer ").strip() or token
    return Credentials(cookies=cookies, access_token=token, identity_type=identity)


def _pop_first(cookies: dict[str, str], keys: tuple[str, ...]) -> str | None:
    found = None
    for key in keys:
        value = cookies.pop(key, None)
        if value and found is None:
            found = value
    return found


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())
