"""Every storage backend's interface, in one place, and the app keys that hold them.

Each backend implements one of these and nothing more: the embedded default (SQLite and
files in the data folder, or memory) needs nothing but pip, and Redis
(``storage/redis/``, ``--state-url``) is the shared backend behind the same interfaces
for several instances. The factory (``storage/factory.py``) builds one backend per
interface per worker, on one Redis client when there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from aiohttp import web

from g4f_server import errors

if TYPE_CHECKING:
    from g4f_server.storage.cookies import Jar
    from g4f_server.storage.media import StoredFile


class ConversationStore(Protocol):
    """Provider state per scoped conversation id, kept between a conversation's turns
    (entries idle for ``conversation_ttl`` expire, at most ``conversation_max`` kept)."""

    async def load(self, conversation_id: str, provider: str) -> dict[str, Any] | None: ...

    async def save(self, conversation_id: str, provider: str, state: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class ResponseStore(Protocol):
    """Stored responses (``store: true`` on POST /v1/responses), one JSON record per
    ``key`` (an id scoped by its owner), bounded in bytes: one record by
    ``response_max_bytes``, all of them by ``response_store_max_bytes`` (the least
    recently saved go first). ``close`` is the app's last call."""

    async def load_response(self, key: str) -> dict[str, Any] | None: ...

    async def save_response(self, key: str, record: dict[str, Any]) -> None:
        """Raises ``response_too_large`` for a record over the per-record bound."""
        ...

    async def delete_response(self, key: str) -> bool:
        """True if there was such a record."""
        ...

    async def close(self) -> None: ...


def response_too_large(size: int, limit: int) -> errors.PayloadTooLargeError:
    """The 413 of a Responses object too large to store: the client may send
    ``store: false``, the operator may raise the setting it names."""
    return errors.PayloadTooLargeError(
        f"This response is too large to store ({size} bytes; response_max_bytes is "
        f"{limit}): send store: false, or ask the operator to raise response_max_bytes",
        param="store",
        code="response_too_large",
    )


class MediaFiles(Protocol):
    """Generated media (images, audio), served by GET /media/{name}."""

    async def save(self, data: bytes, mime_hint: str | None = None) -> StoredFile: ...

    async def fetch(self, name: str) -> Path | bytes | None:
        """A server-generated name's file (a path to serve as it is) or its bytes; None
        for a bad name or one that is gone. Only names the store made get this far."""
        ...

    async def prune_async(self) -> int:
        """Apply the retention policy; how many files went."""
        ...


class CookieJar(Protocol):
    """Uploaded browser cookies, per domain (``storage/cookies.py`` has the file one)."""

    def accessor(self, allowed: Iterable[str]) -> Callable[[str], dict[str, str]]:
        """What ``ProviderContext.cookies`` reads: a host's cookies, for the allowed
        domains only (one provider never reads another's login)."""
        ...

    def summary(self) -> list[dict[str, Any]]:
        """Per domain: cookie names and expiry, never values."""
        ...

    async def replace(
        self, jar: Jar, sources: list[str], max_domains: int | None = None
    ) -> None: ...

    async def delete(self, domain: str | None = None) -> int: ...


class ResponseCache(Protocol):
    """The response cache's bytes (``pipeline/cache.py`` decides what goes in)."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...


class Decision(NamedTuple):
    """A limiter's answer to one check. A named tuple, not a dataclass: made per check,
    and a frozen dataclass costs a call per field to build."""

    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the window ends (the count starts again)


class Limiter(Protocol):
    """The rate limiter's atomic counters. Every call is one round trip to the backend."""

    async def hit(self, key: str, cost: int, limit: int, window: float) -> Decision:
        """Add ``cost`` to ``key``'s count in the current window unless that would go
        over ``limit`` (a ``cost`` of 0 asks whether anything is left: denied once the
        count has reached the limit). A denied hit adds nothing."""
        ...

    async def reserve(self, key: str, cost: int, limit: int, window: float) -> Decision:
        """Add ``cost`` (an estimate, settled later with ``charge``) while the count is
        below ``limit``, even when it takes the count past it; denied (adding nothing)
        once the count has reached it."""
        ...

    async def charge(self, key: str, cost: int, window: float) -> None:
        """Add ``cost`` unconditionally: a request's tokens once its answer is done, less
        what was reserved for it (negative: a refund, never below 0)."""
        ...

    async def acquire(self, key: str, limit: int) -> Decision:
        """Take one of ``limit`` concurrent slots; ``release`` gives it back."""
        ...

    async def release(self, key: str) -> None: ...


CONVERSATIONS: web.AppKey[ConversationStore] = web.AppKey("conversations")
RESPONSES: web.AppKey[ResponseStore] = web.AppKey("responses")
MEDIA_STORE: web.AppKey[MediaFiles] = web.AppKey("media_store")
COOKIES: web.AppKey[CookieJar] = web.AppKey("cookies")
