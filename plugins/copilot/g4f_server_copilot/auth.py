"""Who we are towards Copilot: anonymous (app flavour) or the user's browser login (web).

Credentials come from the kernel's cookie store (JSON cookie exports or HAR files).
``ctx.cookies("copilot.microsoft.com")`` returns that host's cookies and its parent
domain's (microsoft.com), like a browser would send. A HAR's Bearer access token and
``x-useridentitytype`` header arrive as the kernel's pseudo-cookies ``__g4f_access_token``
and ``__g4f_identity_type``; they are taken out before cookies become a Cookie header.
The client's per-request provider key (body ``api_key`` or ``X-Provider-Key``) also
counts as an access token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from g4f_server.provider import ProviderContext

# Parent-domain cookies (MUID, ...) come along with the host's: no need to ask for more.
COOKIE_DOMAINS = ("copilot.microsoft.com",)
ANON_COOKIE = "__Host-copilot-anon"
# The kernel's pseudo-cookie names (g4f_server.storage.cookies).
ACCESS_TOKEN = "__g4f_access_token"
IDENTITY_TYPE = "__g4f_identity_type"

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
    try:
        cookies = dict(ctx.cookies(COOKIE_DOMAINS[0]) or {})
    except Exception as exc:  # the cookie store is the kernel's; never fail a chat on it
        ctx.log.warning("copilot.cookies_unreadable", error=str(exc))
        cookies = {}
    token = cookies.pop(ACCESS_TOKEN, None) or None
    identity = cookies.pop(IDENTITY_TYPE, None) or None
    if ctx.api_key:
        token = ctx.api_key.removeprefix("Bearer ").strip() or token
    return Credentials(cookies=cookies, access_token=token, identity_type=identity)


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def status(ctx: ProviderContext) -> dict[str, object]:
    """Login state for /v1/providers/Copilot (no network; values never included)."""
    creds = load(ctx)
    if creds.logged_in:
        detail = "logged in: access token present (vision available)"
    elif creds.cookies:
        detail = "browser cookies present but no access token: upload a HAR for vision"
    else:
        detail = "anonymous (Android-app client); upload a HAR to log in"
    return {
        "logged_in": creds.logged_in,
        "cookies": sorted(creds.cookies),
        "flavour": creds.flavour,
        "detail": detail,
    }
