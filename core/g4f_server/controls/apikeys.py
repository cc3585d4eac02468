"""The gateway's API keys: the single ``--g4f-api-key`` and the named keys of the config
file (``[keys.NAME]`` with the key's SHA-256, so the file never holds a usable key).

A request is identified by the key's *name*; logs and metrics carry the name, never the
value.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import istr

from g4f_server import errors
from g4f_server.pipeline.scope import bearer_words

_KNOWN_MAX = 256  # valid named keys remembered (the hash is then computed once per key)
DEFAULT_NAME = "default"  # the name of --g4f-api-key in logs and limits
_KEY_FIELDS = frozenset({"sha256", "models", "rpm", "tpm", "concurrency", "admin"})


# istr: the header look-ups per request skip folding the name's case each time.
_G4F_API_KEY, _X_API_KEY = istr("g4f-api-key"), istr("x-api-key")
_AUTHORIZATION = istr("Authorization")


def presented_key(request: web.Request) -> str | None:
    headers = request.headers
    header = headers.get(_G4F_API_KEY) or headers.get(_X_API_KEY)
    if header:  # x-api-key: what the anthropic SDKs and Claude Code send
        return header.strip()
    words = bearer_words(request)
    return words[0] if words else None


def new_key() -> str:
    return "sk-g4f-" + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(_raw(key)).hexdigest()


def _raw(text: str) -> bytes:
    """A header's bytes as sent: aiohttp keeps bytes that are not UTF-8 as surrogates,
    which plain ``encode()`` refuses (a 500 for a client's garbage)."""
    return text.encode("utf-8", "surrogateescape")


@dataclass(slots=True, frozen=True)
class KeyRing:
    single: str | None  # --g4f-api-key, compared in constant time
    by_hash: Mapping[str, str]  # sha256 hex -> key name
    allowed: Mapping[str, tuple[str, ...]]  # key name -> model globs (absent: any model)
    # Keys that may manage the server's shared state (provider cookies): the single key
    # and named keys with ``admin = true``.
    admins: frozenset[str] = frozenset({DEFAULT_NAME})
    # Named keys already seen and valid -> name: a SHA-256 per request was a third of
    # the key check. Only valid keys go in, so guesses cannot grow it.
    _known: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # The same by the whole Authorization header as sent (a client sends the same one
    # request after request): its parsing was half of what was left of the check.
    _known_headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, api_key: str | None, keys: Mapping[str, Any]) -> KeyRing | None:
        """None when no key is configured (the server is open)."""
        by_hash: dict[str, str] = {}
        allowed: dict[str, tuple[str, ...]] = {}
        admins = {DEFAULT_NAME}
        for name, table in keys.items():
            if not isinstance(table, Mapping):
                raise ValueError(f"keys.{name} must be a table")
            unknown = sorted(set(table) - _KEY_FIELDS)
            if unknown:
                raise ValueError(f"keys.{name}: unknown field(s) {', '.join(unknown)}")
            digest = str(table.get("sha256", "")).strip().lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(
                    f"keys.{name}.sha256 must be the key's SHA-256 in hex "
                    "(`g4f-server keys new NAME` prints it)"
                )
            by_hash[digest] = name
            admin = table.get("admin", False)
            if not isinstance(admin, bool):
                raise ValueError(f"keys.{name}.admin must be true or false")
            if admin:
                admins.add(name)
            models = table.get("models")
            if models is not None:
                if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                    raise ValueError(f"keys.{name}.models must be a list of model names")
                allowed[name] = tuple(m.lower() for m in models)
        if not api_key and not by_hash:
            return None
        return cls(api_key or None, by_hash, allowed, frozenset(admins))

    def identify(self, request: web.Request) -> str:
        """The name of the key the request carries; 401 when it carries none or a wrong one."""
        headers = request.headers
        # A named key seen valid in this very header (the two others take precedence).
        # ``in``, not ``get``: no default to pass; a present but empty header then takes
        # presented_key's way, which finds no key in it as before.
        if not (_G4F_API_KEY in headers or _X_API_KEY in headers):
            authorization = headers.get(_AUTHORIZATION)
            name = self._known_headers.get(authorization)  # type: ignore[arg-type]
            if name is not None:
                return name
        else:
            authorization = None
        presented = presented_key(request)
        if not presented:
            raise errors.AuthenticationError(
                "Missing API key: send 'Authorization: Bearer <key>', 'x-api-key: <key>' "
                "or 'g4f-api-key: <key>'"
            )
        if self.single is not None and hmac.compare_digest(_raw(presented), _raw(self.single)):
            return DEFAULT_NAME
        if self.by_hash:
            name = self._known.get(presented)
            if name is None:
                # A dict lookup by the hash: the hash of a guess says nothing about the key.
                name = self.by_hash.get(key_hash(presented))
                if name is not None and len(self._known) < _KNOWN_MAX:
                    self._known[presented] = name
            if name is not None:
                # Only after the single key's comparison failed: that one never goes in.
                if authorization is not None and len(self._known_headers) < _KNOWN_MAX:
                    self._known_headers[authorization] = name
                return name
        raise errors.AuthenticationError("Invalid API key")

    def check_admin(self, key_name: str | None, what: str) -> None:
        """403 unless the key may manage the server's shared state."""
        if key_name not in self.admins:
            raise errors.PermissionDeniedError(
                f"{what} needs an admin key (--g4f-api-key, or a [keys.NAME] with "
                f"admin = true); the key '{key_name}' is not one",
                code="admin_key_required",
            )

    def check_model(self, key_name: str | None, model: str) -> None:
        """403 when the key may only use other models."""
        globs = self.allowed.get(key_name or "")
        if globs is None:
            return
        name = model.lower()
        if not any(fnmatch.fnmatchcase(name, glob) for glob in globs):
            raise errors.PermissionDeniedError(
                f"The key '{key_name}' may not use model '{model}'",
                param="model",
                code="model_not_allowed",
            )


KEYRING: web.AppKey[KeyRing] = web.AppKey("keyring")  # absent when no key is needed

# Paths that need no key. The chat page and its files: the page asks for the key and
# sends it with its API calls (they are static and public anyway). Generated media: chat
# answers embed it as markdown images that browsers fetch without headers; its names
# carry 128 random bits (capability URLs). The status page and the API reference page
# (/docs) and its files, as the chat page: static; they ask for the key and then read
# their data (/v1/status, /openapi.json) with it.
OPEN_PATHS = frozenset(
    {"/health", "/health/live", "/health/ready", "/", "/chat", "/chat/", "/status", "/docs"}
)
OPEN_PREFIXES = ("/media/", "/gui/", "/docs/")
