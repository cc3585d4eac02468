"""Uploaded browser cookies: parsing (JSON exports and HAR files) and the per-domain store.

Providers never open these files. The kernel hands each provider a
``ctx.cookies(host)`` accessor limited to the domains of its ``ProviderInfo.cookie_domains``
(see ``CookieStore.accessor``). A HAR's ``Authorization: Bearer`` token and
``x-useridentitytype`` header are kept as pseudo-cookies of the request's host, named
``__g4f_access_token`` and ``__g4f_identity_type`` (they never reach a Cookie header
unless a provider puts them there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from g4f_server.logs import get_logger
from g4f_server.storage.files import atomic_write

log = get_logger("g4f_server.cookies")

ACCESS_TOKEN = "__g4f_access_token"
IDENTITY_TYPE = "__g4f_identity_type"
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
# RFC 6265 token for names; values must not break a Cookie header.
_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$")
_BAD_VALUE = re.compile(r"[\x00-\x1f\x7f;]")
_MAX_VALUE = 16 * 1024


class CookieFileError(ValueError):
    """An uploaded file that is not a usable cookie export (the message says why)."""


class CookieLimitError(ValueError):
    """An upload would keep more domains than ``cookie_max_domains``; nothing was stored."""

    def __init__(self, total: int, limit: int) -> None:
        super().__init__(f"{total} domains (limit {limit})")
        self.total, self.limit = total, limit


@dataclass(slots=True)
class Cookie:
    value: str
    expires: float | None = None  # unix time; None = session cookie

    def alive(self, now: float) -> bool:
        return self.expires is None or self.expires > now


Jar = dict[str, dict[str, Cookie]]  # domain -> name -> cookie


def normalize_domain(domain: str) -> str:
    return domain.strip().lower().strip(".")


def valid_domain(domain: str) -> bool:
    return len(domain) <= 253 and bool(_DOMAIN.match(domain))


# --- parsing -----------------------------------------------------------------------------


def parse_cookie_file(data: bytes, now: float | None = None) -> Jar:
    """Parse a JSON cookie export or a HAR file; raise ``CookieFileError`` with a reason."""
    now = time.time() if now is None else now
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CookieFileError(f"not valid JSON ({exc})") from None
    if isinstance(doc, dict) and "log" in doc:
        jar = _parse_har(doc, now)
    elif isinstance(doc, dict) and "cookies" in doc:
        jar = _parse_export(doc["cookies"], now)
    elif isinstance(doc, list):
        jar = _parse_export(doc, now)
    else:
        raise CookieFileError(
            'expected a HAR file or a cookie export (a list of cookies or {"cookies": [...]})'
        )
    if not any(jar.values()):
        raise CookieFileError("the file contains no unexpired cookies")
    return jar


def _parse_export(items: Any, now: float) -> Jar:
    if not isinstance(items, list):
        raise CookieFileError("'cookies' must be a list")
    jar: Jar = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise CookieFileError(f"cookie {i} is not an object")
        domain = item.get("domain") or item.get("host")
        if not isinstance(domain, str):
            raise CookieFileError(f"cookie {i} has no 'domain'")
        expires = _expiry(item.get("expirationDate", item.get("expires")), f"cookie {i}")
        _put(jar, domain, item.get("name"), item.get("value"), expires, now, f"cookie {i}")
    return jar


def _parse_har(doc: dict[str, Any], now: float) -> Jar:
    entries = doc["log"].get("entries") if isinstance(doc["log"], dict) else None
    if not isinstance(entries, list):
        raise CookieFileError("HAR file without log.entries")
    jar: Jar = {}
    for i, entry in enumerate(entries):
        where = f"HAR entry {i}"
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            raise CookieFileError(f"{where} has no request.url")
        host = urlsplit(request["url"]).hostname or ""
        if not host:
            continue  # data: or about: entries carry no cookies
        for cookie in _list(request.get("cookies"), f"{where} request.cookies"):
            _put(jar, host, cookie.get("name"), cookie.get("value"), None, now, where)
        headers = _headers(request.get("headers"), where)
        token = headers.get("authorization", "")
        if token[:7].lower() == "bearer " and token[7:].strip():
            _put(jar, host, ACCESS_TOKEN, token[7:].strip(), None, now, where)
        if headers.get("x-useridentitytype"):
            _put(jar, host, IDENTITY_TYPE, headers["x-useridentitytype"], None, now, where)
        response = entry.get("response")
        if isinstance(response, dict):
            for cookie in _list(response.get("cookies"), f"{where} response.cookies"):
                domain = cookie.get("domain") or host
                expires = _expiry(cookie.get("expires"), where)
                if expires is not None and expires <= now:
                    # A Set-Cookie that expires the cookie deletes it (later entries win).
                    jar.get(normalize_domain(str(domain)), {}).pop(str(cookie.get("name")), None)
                    continue
                _put(jar, str(domain), cookie.get("name"), cookie.get("value"), expires, now, where)
    return jar


def _list(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise CookieFileError(f"{where} must be a list of objects")
    return value


def _headers(value: Any, where: str) -> dict[str, str]:
    return {
        str(h.get("name", "")).lower(): str(h.get("value", ""))
        for h in _list(value, f"{where} request.headers")
    }


def _expiry(value: Any, where: str) -> float | None:
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise CookieFileError(f"{where}: unreadable expiry {value!r}") from None
    raise CookieFileError(f"{where}: unreadable expiry {value!r}")


def _put(
    jar: Jar, domain: str, name: Any, value: Any, expires: float | None, now: float, where: str
) -> None:
    domain = normalize_domain(domain)
    if not valid_domain(domain):
        raise CookieFileError(f"{where}: invalid domain {domain!r}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise CookieFileError(f"{where}: invalid cookie name {name!r}")
    if not isinstance(value, str) or len(value) > _MAX_VALUE or _BAD_VALUE.search(value):
        raise CookieFileError(f"{where}: invalid value for cookie {name!r}")
    if expires is not None and expires <= now:
        return  # expired cookies are simply not kept
    jar.setdefault(domain, {})[name] = Cookie(value, expires)


def merge(jars: Iterable[Jar]) -> Jar:
    """Several uploaded files as one jar; later files win per cookie."""
    out: Jar = {}
    for jar in jars:
        for domain, cookies in jar.items():
            out.setdefault(domain, {}).update(cookies)
    return {d: c for d, c in out.items() if c}


# --- the store ---------------------------------------------------------------------------


@dataclass(slots=True)
class DomainCookies:
    cookies: dict[str, Cookie]
    updated_at: float
    sources: list[str] = field(default_factory=list)

    @staticmethod
    def doc(domain: str, cookies: dict[str, Cookie], sources: list[str], now: float) -> bytes:
        """The stored form of one domain's cookies (a file, or a Redis hash field)."""
        return orjson.dumps(
            {
                "domain": domain,
                "updated_at": now,
                "sources": sources,
                "cookies": {
                    n: {"value": c.value, "expires": c.expires} for n, c in cookies.items()
                },
            }
        )

    @classmethod
    def from_doc(cls, doc: Any) -> DomainCookies:
        """Raises ValueError, KeyError, TypeError or AttributeError on a broken doc."""
        return cls(
            {n: Cookie(c["value"], c.get("expires")) for n, c in doc["cookies"].items()},
            float(doc.get("updated_at", 0)),
            list(doc.get("sources", [])),
        )


class CookieStore:
    """One ``<domain>.json`` file (mode 0600) per domain, cached in memory.

    An upload replaces the whole set of each domain it contains: a fresh browser export
    is the current session, and mixing it with stale cookies breaks logins. The cache is
    reloaded when the folder changes, so several workers see each other's uploads.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._domains: dict[str, DomainCookies] = {}
        self._seen_mtime: int | None = None
        self._lock = asyncio.Lock()
        self._accessors: dict[tuple[str, ...], Callable[[str], dict[str, str]]] = {}

    # reading (synchronous: providers call ctx.cookies(host) inline)

    def _refresh(self) -> None:
        try:
            mtime = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            self._domains, self._seen_mtime = {}, None
            return
        if mtime == self._seen_mtime:
            return
        domains: dict[str, DomainCookies] = {}
        for path in self.folder.glob("*.json"):
            domain = path.stem
            if not valid_domain(domain):
                continue
            try:
                domains[domain] = DomainCookies.from_doc(orjson.loads(path.read_bytes()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("cookie_file_unreadable", file=path.name, error=repr(exc))
        self._domains, self._seen_mtime = domains, mtime

    def for_host(self, host: str) -> dict[str, str]:
        """The cookies a browser would send to ``host``: its own and its parents'
        (the more specific domain wins), unexpired."""
        self._refresh()
        host = normalize_domain(host)
        labels = host.split(".")
        now = time.time()
        out: dict[str, str] = {}
        for i in range(len(labels) - 2, -1, -1):  # microsoft.com, then copilot.microsoft.com
            stored = self._domains.get(".".join(labels[i:]))
            if stored:
                out.update({n: c.value for n, c in stored.cookies.items() if c.alive(now)})
        return out

    def accessor(self, allowed: Iterable[str]) -> Callable[[str], dict[str, str]]:
        """``ctx.cookies`` for a provider: hosts outside its ``cookie_domains`` get {}.
        One per set of domains (made for every provider call, so kept)."""
        key = tuple(allowed)
        cached = self._accessors.get(key)
        if cached is None:
            cached = self._accessors[key] = self._make_accessor(key)
        return cached

    def _make_accessor(self, allowed: tuple[str, ...]) -> Callable[[str], dict[str, str]]:
        allowed_domains = tuple(normalize_domain(d) for d in allowed if normalize_domain(d))

        def cookies(host: str) -> dict[str, str]:
            h = normalize_domain(host)
            if not any(h == a or h.endswith("." + a) for a in allowed_domains):
                return {}
            return self.for_host(h)

        return cookies

    def summary(self) -> list[dict[str, Any]]:
        """Domains and cookie names, never values."""
        self._refresh()
        now = time.time()
        return [
            {
                "domain": domain,
                "names": sorted(n for n, c in item.cookies.items() if c.alive(now)),
                "updated_at": int(item.updated_at),
                "sources": item.sources,
            }
            for domain, item in sorted(self._domains.items())
        ]

    # writing

    async def replace(self, jar: Jar, sources: list[str], max_domains: int | None = None) -> None:
        """Store ``jar``, each of its domains replaced whole. With ``max_domains``: raise
        ``CookieLimitError`` (storing nothing) when the stored domains and the new ones
        together would be more."""
        async with self._lock:
            await asyncio.to_thread(self._write_all, jar, sources, max_domains)

    def _write_all(self, jar: Jar, sources: list[str], max_domains: int | None) -> None:
        if max_domains is not None:
            stored = {p.stem for p in self.folder.glob("*.json") if valid_domain(p.stem)}
            total = len(stored | jar.keys())
            if total > max_domains:
                raise CookieLimitError(total, max_domains)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = time.time()
        for domain, cookies in jar.items():
            doc = DomainCookies.doc(domain, cookies, sources, now)
            atomic_write(self.folder / f"{domain}.json", doc, mode=0o600)
        self._seen_mtime = None

    async def delete(self, domain: str | None = None) -> int:
        """Delete one domain's cookies (or all with None); returns how many domains."""
        async with self._lock:
            return await asyncio.to_thread(self._delete, domain)

    def _delete(self, domain: str | None) -> int:
        if domain is not None:
            domain = normalize_domain(domain)
            if not valid_domain(domain):
                return 0
            paths = [self.folder / f"{domain}.json"]
        else:
            paths = list(self.folder.glob("*.json"))
        deleted = 0
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                deleted += 1
        self._seen_mtime = None
        return deleted
