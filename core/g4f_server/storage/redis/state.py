"""Shared state on Redis (``--state-url``): what several gateway instances must agree on.

With a state URL, conversations, stored Responses objects, uploaded cookies and generated
media live in one Redis database instead of the data folder, behind the same store
interfaces (``ConversationStore``/``ResponseStore``, ``CookieStore``, the media store).
``redis`` (redis-py's asyncio client) is imported only here, and this module only when a
state URL is set: the embedded default never loads it.

Keys, all under ``AppConfig.state_prefix`` (``g4f:`` by default), each with a TTL::

    conv:<scoped id>:<provider>  conversation state and history   conversation_ttl
    conv:index                   sorted set: those keys by last save (the LRU cap)
    resp:<scoped id>             a stored Responses object          conversation_ttl
    resp:index                   sorted set, as conv:index
    resp:sizes, resp:total       each one's bytes, their sum (response_store_max_bytes)
    media:<name>                 the bytes of a generated file      media_max_age
    media:index, media:sizes     when each file was stored, its size
    media:total                  bytes stored (bounded by media_max_bytes)
    cookies                      hash: domain -> that domain's cookies (JSON)
    cookies:changed              pub/sub channel: an instance changed the cookies

Every write that must keep a bound runs as one Lua script, so two instances never see a
half-applied cap. Standalone Redis (or a primary behind Sentinel) only: the scripts
touch keys they compute, which Redis Cluster does not allow.

Faults: any Redis error becomes ``StateUnavailableError`` (503 ``state_unavailable``)
for the request that needed state; requests that need none never touch Redis. redis-py
reconnects on the next command, so the server recovers without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from g4f_server import errors
from g4f_server.config import AppConfig, redact_url
from g4f_server.logs import get_logger
from g4f_server.storage.cookies import (
    CookieLimitError,
    CookieStore,
    DomainCookies,
    Jar,
    normalize_domain,
)
from g4f_server.storage.interfaces import response_too_large
from g4f_server.storage.media import NAME, StoredFile, new_file

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger("g4f_server.state")
T = TypeVar("T")

CONNECT_TIMEOUT = 2.0  # seconds to open a connection: a dead Redis is a quick 503
COMMAND_TIMEOUT = 5.0  # seconds for one command's answer
COOKIE_TTL = 30 * 86400  # seconds the cookies hash outlives its last upload (session cookies)
RECONNECT_DELAY = 1.0  # seconds between attempts of the cookie watcher


class StateStartupError(RuntimeError):
    """Redis could not be reached when the server started (the message names the URL,
    never the password)."""


def _client(config: AppConfig) -> Redis:
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError:
        raise StateStartupError(
            "--state-url needs the redis package: pip install 'g4f-server[redis]'"
        ) from None
    assert config.state_url
    extra: dict[str, Any] = {}
    if config.state_password:  # a password in the URL wins (redis-py's rule)
        extra["password"] = config.state_password
    return Redis.from_url(
        config.state_url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        # One immediate retry: a pooled connection that Redis closed (restart) is replaced
        # at once; a Redis that is down answers 503 without waiting out a backoff.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        **extra,
    )


class RedisState:
    """The client, the key prefix and the one translation of Redis errors."""

    def __init__(self, config: AppConfig) -> None:
        self.url = redact_url(config.state_url or "")
        self.prefix = config.state_prefix
        self.client = _client(config)

    def key(self, name: str) -> str:
        return self.prefix + name

    async def run(self, command: Awaitable[T], timeout: float | None = None) -> T:
        """Await a Redis command; its failure is the request's 503. ``timeout``: seconds
        before a Redis that accepts but does not answer (hung, SIGSTOP) counts as away;
        without it the client's own socket timeout applies (and its one retry)."""
        from redis.exceptions import RedisError

        try:
            if timeout is None:
                return await command
            # Cancelling the command makes redis-py drop that connection: a late reply
            # can never be read as the answer to a later command.
            async with asyncio.timeout(timeout):
                return await command
        except (RedisError, TimeoutError) as exc:
            # The error's type and text (no keys, no values: never content) are logged.
            log.warning("state_unavailable", url=self.url, error=f"{type(exc).__name__}: {exc}")
            raise errors.StateUnavailableError(
                "The shared state store is unavailable; requests that need stored state "
                "(conversations, stored responses, media, cookie uploads) fail until it "
                "is back"
            ) from None

    async def check(self) -> None:
        """At start-up: Redis answers, or a clear ``StateStartupError``."""
        try:
            await self.client.ping()
        except Exception as exc:
            raise StateStartupError(
                f"Cannot reach the state store at {self.url} (--state-url / G4F_STATE_URL): "
                f"{type(exc).__name__}: {exc}"
            ) from None

    async def close(self) -> None:
        await self.client.aclose()


def preflight(config: AppConfig) -> str | None:
    """Before serving (``api.serve``): the reason Redis cannot be used, or None."""

    async def check() -> None:
        state = RedisState(config)
        try:
            await state.check()
        finally:
            await state.close()

    try:
        asyncio.run(check())
    except StateStartupError as exc:
        return str(exc)
    return None


# --- conversations and stored responses ---------------------------------------------------

# KEYS[1] the entry, KEYS[2] the index of its kind; ARGV value, now, ttl, cap.
# The index holds entry keys by last save: expired ones leave it, then the least
# recently saved go until the cap holds (as the SQLite store's purge does).
_SAVE_CAPPED = """
local now, ttl, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local extra = redis.call('ZCARD', KEYS[2]) - cap
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('DEL', unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
redis.call('EXPIRE', KEYS[2], ttl)
"""


# KEYS entry, index, sizes (hash entry -> bytes), total; ARGV value, now, ttl, cap,
# max_bytes. _SAVE_CAPPED's bounds, and the bytes: expired entries leave the books, then
# the least recently saved go until the count and the total fit (never the new one).
_SAVE_RESPONSE = """
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local old = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '0')
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], #ARGV[1])
local total = redis.call('INCRBY', KEYS[4], #ARGV[1] - old)
local function drop(victim)
  local size = tonumber(redis.call('HGET', KEYS[3], victim) or '0')
  redis.call('DEL', victim)
  redis.call('ZREM', KEYS[2], victim)
  redis.call('HDEL', KEYS[3], victim)
  total = redis.call('DECRBY', KEYS[4], size)
end
for _, victim in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl)) do
  drop(victim)
end
local extra = redis.call('ZCARD', KEYS[2]) - cap
if extra > 0 then
  for _, victim in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do drop(victim) end
end
while total > max_bytes do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 1)
  local victim = oldest[1]
  if victim == KEYS[1] then victim = oldest[2] end
  if not victim then break end
  drop(victim)
end
for i = 2, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
"""

# KEYS entry, index, sizes, total: one stored response deleted, its bytes off the books.
_DELETE_RESPONSE = """
local size = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '0')
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('HDEL', KEYS[3], KEYS[1])
if size > 0 then redis.call('DECRBY', KEYS[4], size) end
return redis.call('DEL', KEYS[1])
"""


class RedisConversationStore:
    """``ConversationStore`` and ``ResponseStore`` on Redis, with the SQLite store's
    bounds: an entry not saved for ``ttl`` seconds expires, at most ``max_rows`` of each
    kind are kept (least recently saved go first)."""

    def __init__(
        self,
        state: RedisState,
        *,
        ttl: float,
        max_rows: int,
        max_record: int = 16 * 1024**2,
        max_bytes: int = 512 * 1024**2,
    ) -> None:
        self.state = state
        self.ttl = max(1, math.ceil(ttl))
        self.max_rows = max_rows
        self.max_record = max_record  # one stored response (response_too_large above it)
        self.max_bytes = max_bytes  # all stored responses
        self._save = state.client.register_script(_SAVE_CAPPED)
        self._save_response = state.client.register_script(_SAVE_RESPONSE)
        self._delete_response = state.client.register_script(_DELETE_RESPONSE)

    def _response_keys(self, key: str) -> list[str]:
        entry = self.state.key(f"resp:{key}")
        return [entry, *(self.state.key(f"resp:{kind}") for kind in ("index", "sizes", "total"))]

    async def _load(self, key: str) -> dict[str, Any] | None:
        blob = await self.state.run(self.state.client.get(self.state.key(key)))
        return None if blob is None else orjson.loads(blob)

    async def _store(self, kind: str, key: str, value: dict[str, Any]) -> None:
        keys = [self.state.key(f"{kind}:{key}"), self.state.key(f"{kind}:index")]
        args = [orjson.dumps(value), time.time(), self.ttl, self.max_rows]
        await self.state.run(self._save(keys=keys, args=args))

    async def load(self, conversation_id: str, provider: str) -> dict[str, Any] | None:
        return await self._load(f"conv:{conversation_id}:{provider.lower()}")

    async def save(self, conversation_id: str, provider: str, state: dict[str, Any]) -> None:
        await self._store("conv", f"{conversation_id}:{provider.lower()}", state)

    async def load_response(self, key: str) -> dict[str, Any] | None:
        return await self._load(f"resp:{key}")

    async def save_response(self, key: str, record: dict[str, Any]) -> None:
        blob = orjson.dumps(record)
        if len(blob) > self.max_record:
            raise response_too_large(len(blob), self.max_record)
        args = [blob, time.time(), self.ttl, self.max_rows, self.max_bytes]
        await self.state.run(self._save_response(keys=self._response_keys(key), args=args))

    async def delete_response(self, key: str) -> bool:
        deleted = await self.state.run(self._delete_response(keys=self._response_keys(key)))
        return deleted > 0

    async def close(self) -> None:
        pass  # the client is closed with the app (shared_state_ctx)


# --- media ----------------------------------------------------------------------------------

# KEYS index (zset name -> stored at), sizes (hash name -> bytes), total (bytes);
# ARGV data key prefix, name, bytes, now, max_age, max_bytes.
# Expired files leave the books, then the oldest others until the total fits.
_SAVE_MEDIA = """
local prefix, name, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
local ttl, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('SET', prefix .. name, ARGV[3], 'EX', ttl)
redis.call('ZADD', KEYS[1], now, name)
redis.call('HSET', KEYS[2], name, #ARGV[3])
local total = redis.call('INCRBY', KEYS[3], #ARGV[3])
local function drop(victim)
  local size = tonumber(redis.call('HGET', KEYS[2], victim) or '0')
  redis.call('DEL', prefix .. victim)
  redis.call('ZREM', KEYS[1], victim)
  redis.call('HDEL', KEYS[2], victim)
  total = redis.call('DECRBY', KEYS[3], size)
end
for _, victim in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl)) do
  drop(victim)
end
while total > max_bytes do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 1)
  local victim = oldest[1]
  if victim == name then victim = oldest[2] end
  if not victim then break end
  drop(victim)
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
"""


class RedisMediaStore:
    """Generated media as Redis values: each file expires after ``max_age``, and the
    total stays within ``max_bytes`` (oldest files go first; the new one stays)."""

    def __init__(
        self, state: RedisState, *, max_age: float, max_bytes: int, max_file_size: int
    ) -> None:
        self.state = state
        self.max_age = max(1, math.ceil(max_age))
        self.max_bytes = max_bytes
        self.max_file_size = max_file_size
        self._save = state.client.register_script(_SAVE_MEDIA)

    async def save(self, data: bytes, mime_hint: str | None = None) -> StoredFile:
        stored = new_file(data, mime_hint, self.max_file_size)
        keys = [self.state.key(f"media:{kind}") for kind in ("index", "sizes", "total")]
        args = [self.state.key("media:"), stored.name, data, time.time()]
        await self.state.run(self._save(keys=keys, args=[*args, self.max_age, self.max_bytes]))
        return stored

    async def fetch(self, name: str) -> bytes | None:
        """MediaFiles.fetch: the bytes (no file to hand out on shared state)."""
        return await self.load(name)

    async def load(self, name: str) -> bytes | None:
        """The bytes of a server-generated name, or None (bad name or gone)."""
        if not NAME.match(name):
            return None
        return await self.state.run(self.state.client.get(self.state.key(f"media:{name}")))

    async def prune_async(self) -> int:
        return 0  # every save applies the bounds; Redis expires the files itself


# --- cookies ---------------------------------------------------------------------------------

# KEYS[1] the cookies hash; ARGV channel, ttl, max domains (0: no cap), then domain, doc
# pairs ("" doc: delete). Over the cap nothing is written and the would-be count returned
# (checked here so that two instances' uploads cannot pass it together); else 0.
# The hash lives at least ``ttl`` past this change; the other instances are told.
_WRITE_COOKIES = """
local cap = tonumber(ARGV[3])
if cap > 0 then
  local total = redis.call('HLEN', KEYS[1])
  for i = 4, #ARGV, 2 do
    if ARGV[i + 1] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
      total = total + 1
    end
  end
  if total > cap then
    return total
  end
end
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local ttl = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('TTL', KEYS[1]) < ttl then
  redis.call('EXPIRE', KEYS[1], ttl)
end
redis.call('PUBLISH', ARGV[1], 'changed')
return 0
"""


class RedisCookieStore(CookieStore):
    """Uploaded cookies in one Redis hash, read from a local copy.

    Providers read cookies synchronously (``ctx.cookies(host)``), so each instance keeps
    the whole jar in memory: loaded at start, updated at once by its own uploads and,
    for the other instances' uploads, on their pub/sub notice (``watch``). While Redis
    is away the copy keeps serving; it is reloaded when the notices resume.
    """

    def __init__(self, state: RedisState) -> None:
        super().__init__(Path())  # no folder: _refresh is a no-op, the jar comes from Redis
        self.state = state
        self.hash = state.key("cookies")
        self.channel = state.key("cookies:changed")
        self._write = state.client.register_script(_WRITE_COOKIES)

    def _refresh(self) -> None:
        pass

    async def reload(self) -> None:
        stored = await self.state.run(self.state.client.hgetall(self.hash))
        domains: dict[str, DomainCookies] = {}
        for domain, doc in stored.items():
            try:
                domains[domain.decode()] = DomainCookies.from_doc(orjson.loads(doc))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("cookie_entry_unreadable", domain=domain.decode(), error=repr(exc))
        self._domains = domains

    async def _change(self, pairs: list[tuple[str, bytes]], ttl: int, cap: int = 0) -> None:
        args: list[Any] = [self.channel, ttl, cap]
        for domain, doc in pairs:
            args += [domain, doc]
        async with self._lock:
            refused = await self.state.run(self._write(keys=[self.hash], args=args))
            if refused:
                raise CookieLimitError(int(refused), cap)
            await self.reload()

    async def replace(self, jar: Jar, sources: list[str], max_domains: int | None = None) -> None:
        now = time.time()
        expiries = [c.expires for cookies in jar.values() for c in cookies.values()]
        # Long enough for the latest-expiring cookie; session cookies get COOKIE_TTL.
        ttl = max([COOKIE_TTL, *(math.ceil(e - now) for e in expiries if e is not None)])
        pairs = [(d, DomainCookies.doc(d, c, sources, now)) for d, c in jar.items()]
        await self._change(pairs, ttl, max_domains or 0)

    async def delete(self, domain: str | None = None) -> int:
        domains = list(self._domains) if domain is None else [normalize_domain(domain)]
        present = [d for d in domains if d in self._domains]
        if present:
            await self._change([(d, b"") for d in present], COOKIE_TTL)
        return len(present)

    async def watch(self) -> None:
        """Reload on every other instance's notice, for as long as the app runs;
        after a lost connection, resubscribe and reload (a notice may have been missed)."""
        while True:
            pubsub = self.state.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self.reload()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self.reload()
            except Exception as exc:  # Redis away (or restarting): try again shortly
                log.debug("cookie_watch_interrupted", error=type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RECONNECT_DELAY)


# --- wiring ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def shared_state_ctx(state: RedisState, cookies: RedisCookieStore) -> AsyncIterator[None]:
    """Redis answers before the app serves (else ``StateStartupError``); the cookie jar
    is loaded and watched while it serves; the client closes with the app."""
    try:
        await state.check()
        await cookies.reload()
        watcher = asyncio.create_task(cookies.watch())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    finally:
        await state.close()


# --- the response cache ---------------------------------------------------------------------


class RedisCache:
    """``interfaces.ResponseCache`` on Redis: every instance answers every other's hits.

    Entries expire after their TTL; their total stays within ``max_bytes`` (oldest first,
    the media store's script under ``cache:``). The cache is an optimisation, so Redis
    being away is a miss (get) or nothing stored (put), never a failed request.
    """

    def __init__(self, config: AppConfig, state: RedisState) -> None:
        self.max_bytes = config.cache_max_bytes
        self.state = state  # the worker's one client (storage/factory.py closes it)
        self._save = state.client.register_script(_SAVE_MEDIA)

    async def get(self, key: str) -> bytes | None:
        state = self.state
        try:
            return await state.run(state.client.get(state.key(f"cache:{key}")))
        except errors.StateUnavailableError:
            return None

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) > self.max_bytes:
            return
        state = self.state
        keys = [state.key(f"cache:{kind}") for kind in ("index", "sizes", "total")]
        args = [state.key("cache:"), key, value, time.time(), max(1, math.ceil(ttl))]
        with contextlib.suppress(errors.StateUnavailableError):
            await state.run(self._save(keys=keys, args=[*args, self.max_bytes]))
