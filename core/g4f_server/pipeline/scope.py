"""Who is asking: the keys a request carries for the gateway and for a provider, and the
client's address behind trusted proxies. Conversations and stored responses are scoped
by it (``conversation_key``, ``owner_key``), and the per-client rate limits count it."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web
from multidict import istr

from g4f_server import errors
from g4f_server.appkeys import KEY_NAME

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
# parsed --trusted-proxies, always set by the app
TRUSTED: web.AppKey[Networks] = web.AppKey("trusted_proxies")
# A provider key travels upstream in an HTTP header: the rule of ``requests.header_safe``
# (the body's ``api_key``), kept here as well because requests.py loads pydantic and this
# module loads at start-up.
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
# Looked up on every chat request: a case-insensitive header name made once (a str
# would be lower-cased and hashed again by each lookup).
_PROVIDER_KEY = istr("X-Provider-Key")


def bearer_words(request: web.Request) -> list[str]:
    """``Authorization: Bearer <server key> <provider key>``, split: the first word is
    ours, the rest (``provider_key``) the provider's. [] without a Bearer."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() != "bearer ":
        return []
    return auth[7:].split(None, 1)


def provider_key(request: web.Request | None, body_key: str | None) -> str | None:
    """A key the client passed for the provider (never the gateway's own key): the body's
    ``api_key``, else ``X-Provider-Key``, else the second word of
    ``Authorization: Bearer <server key> <provider key>``."""
    if body_key:  # (demo mode refuses it at admission: controls/demo.py)
        return body_key
    if request is None:
        return None
    if header := request.headers.get(_PROVIDER_KEY):
        return _checked(header, "X-Provider-Key")
    words = bearer_words(request)
    if len(words) == 2:
        return _checked(words[1].strip(), "Authorization")
    return None


def _checked(value: str, header: str) -> str:
    if not _HEADER_SAFE.fullmatch(value):
        raise errors.InvalidRequestError(
            f"Invalid provider key in the {header} header: must be printable ASCII (it "
            "travels in an HTTP header)",
            param=header,
        )
    return value


def parse_trusted(trusted_proxies: Sequence[str]) -> Networks:
    """``--trusted-proxies`` as networks; ValueError names a bad entry."""
    return tuple(ipaddress.ip_network(net, strict=False) for net in trusted_proxies)


def client_address(request: web.Request, trusted: Sequence[Any]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last
    ``X-Forwarded-For`` hop that is not one (a client can prepend anything it likes)."""
    peer = request.remote or ""
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops: list[str] = []
    for value in request.headers.getall("X-Forwarded-For", ()):
        hops += [hop.strip() for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):  # the nearest hop first: our proxy appended it
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: Sequence[Any]) -> bool:
    ip = _address(address)
    return ip is not None and any(ip in net for net in trusted)


@functools.lru_cache(maxsize=256)
def _address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` parsed, None when it is not one. Parsed once per peer (or hop) while it
    keeps coming: parsing was ~4 us a request. Bounded: the clients are unbounded."""
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def anonymous_client(request: web.Request) -> str | None:
    """The client address of a request that carried no key (the server has none), the
    same address the per-client limits count; None for a keyed request."""
    if request.get(KEY_NAME):
        return None
    return client_address(request, request.app.get(TRUSTED, ()))


# --- store keys scoped by who is asking ---------------------------------------------------
#
# Conversation ids are chosen by clients ("conv-1"), so two clients can pick the same one.
# ``conversation_key`` scopes an id by who is asking: the credentials the client presents
# (gateway key header, provider key), the OpenAI ``user`` field and, on a server without
# a key (where every client presents the same nothing), the client's address
# (``anonymous_client``). Clients with different credentials, users or, anonymous,
# addresses never share a conversation; clients sharing all of them do (use random ids,
# e.g. UUIDs, when several people share one key and no ``user``).


def conversation_key(
    headers: Mapping[str, str],
    conversation_id: str,
    *,
    provider_key: str | None = None,
    user: str | None = None,
    client: str | None = None,
) -> str:
    """The store key of a client's conversation id (see the note above); ``client`` is
    the address of an anonymous client (None for a keyed request)."""
    parts = [
        headers.get("Authorization", ""),
        headers.get("g4f-api-key", ""),
        provider_key or "",
        user or "",
    ]
    if headers.get("x-api-key"):  # only when sent: keys of existing conversations stay
        parts.append(headers["x-api-key"])
    if client is not None:  # only anonymous: keyed conversations keep their store keys
        parts.append(f"client:{client}")
    return f"{_scope(parts)}:{conversation_id}"


def owner_key(headers: Mapping[str, str], response_id: str, client: str | None = None) -> str:
    """The store key of a stored response: scoped by the keys the request carries (GET
    and DELETE have no body, so a body ``api_key`` or ``user`` cannot take part) and, for
    an anonymous client, its address, as conversations are. The keys, not the headers'
    spelling: ``Bearer K``, ``bearer K``, ``x-api-key: K`` and ``g4f-api-key: K`` are
    one owner (the OpenAI and the Anthropic SDKs send the same key differently)."""
    parts = [_canonical_auth(headers), "", "", headers.get("X-Provider-Key", "")]
    if client is not None:
        parts.append(f"client:{client}")
    return f"{_scope(parts)}:{response_id}"


def _canonical_auth(headers: Mapping[str, str]) -> str:
    """The gateway key and a second-word provider key as ``Bearer K [P]``: what the same
    keys sent as ``Authorization: Bearer K [P]`` always hashed as, so that responses
    stored before keep their keys."""
    auth = headers.get("Authorization", "")
    words = auth[7:].split(None, 1) if auth[:7].lower() == "bearer " else []
    key = (headers.get("g4f-api-key") or headers.get("x-api-key") or "").strip()
    key = key or (words[0] if words else "")
    if not key:
        return auth  # no key in any spelling (e.g. Basic): as sent
    second = f" {words[1].strip()}" if len(words) == 2 else ""
    return f"Bearer {key}{second}"


def _scope(parts: list[str]) -> str:
    """A short hash of who is asking (the prefix of a store key)."""
    try:
        material = orjson.dumps(parts)
    except TypeError:  # a header with bytes that are not UTF-8: hash the bytes as sent
        raw = [p.encode("utf-8", "surrogateescape").decode("latin-1") for p in parts]
        material = orjson.dumps(["raw", *raw])  # never the material of valid text
    return hashlib.sha256(material).hexdigest()[:24]
