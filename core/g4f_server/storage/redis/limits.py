"""The rate limiter's counters on Redis (``limits.Limiter``), shared by every instance.

Each call is one Lua script, so a check and its increment are one atomic step: with N
requests allowed, exactly N are admitted across all instances, however they interleave.
Windows are aligned on Redis's clock (``TIME``), not each instance's, so instances whose
clocks differ still count in the same window.

Keys (under the state prefix), each with a TTL::

    limit:<key>:<window start>   a fixed-window count          window + 1 s
    slots:<key>                  sorted set: concurrent holders by lease end

A concurrency slot is a lease: an instance that dies holding it does not leak it past
``lease`` seconds (longer than any request may take).

Every call waits at most ``limits_timeout`` (250 ms by default) for Redis: one that
hangs (accepts but never answers) would otherwise hold each limited request for the
client's socket timeout and its retry, 10 s and more. Unreachable or late, a call raises
``StateUnavailableError``; what follows (503, or admitted uncounted) is the operator's
choice, ``limits_fail_closed``, applied by ``controls/limits.py``.
"""

from __future__ import annotations

import contextlib
import secrets

from g4f_server import errors
from g4f_server.config import AppConfig
from g4f_server.storage.interfaces import Decision
from g4f_server.storage.redis.state import RedisState

# KEYS[1] the counter's base key; ARGV cost (negative: a refund), limit (-1: charge
# unconditionally), window, and "r" to reserve (refused only once the count has reached
# the limit, the cost may take it past).
# Returns {allowed, used, reset seconds as a string (Lua numbers come back as integers)}.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = math.floor(now / window) * window
local key = KEYS[1] .. ':' .. string.format('%d', start)
local used = tonumber(redis.call('GET', key) or '0')
local reset = tostring(start + window - now)
if limit >= 0 and (used >= limit or (ARGV[4] ~= 'r' and used + cost > limit)) then
  return {0, used, reset}
end
if cost ~= 0 then
  used = redis.call('INCRBY', key, cost)
  if used < 0 then  -- a refund never takes the count below 0
    redis.call('SET', key, 0)
    used = 0
  end
  redis.call('EXPIRE', key, math.ceil(window) + 1)
end
return {1, used, reset}
"""

# KEYS[1] the slots set; ARGV holder token, limit, lease seconds.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local used = redis.call('ZCARD', KEYS[1])
if used >= limit then
  return {0, used}
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(lease))
return {1, used + 1}
"""


class RedisLimiter:
    """``Limiter`` on the shared state store, through the worker's one client."""

    def __init__(self, config: AppConfig, state: RedisState) -> None:
        self.timeout = config.limits_timeout
        self.lease = 2 * config.timeout + 60.0
        self.state = state  # the worker's one client (storage/factory.py closes it)
        self._hit = state.client.register_script(_HIT)
        self._acquire = state.client.register_script(_ACQUIRE)
        self._held: dict[str, list[str]] = {}  # slot key -> this instance's tokens

    async def hit(self, key: str, cost: int, limit: int, window: float) -> Decision:
        state = self.state
        allowed, used, reset = await state.run(
            self._hit(keys=[state.key(f"limit:{key}")], args=[cost, limit, window]),
            self.timeout,
        )
        return Decision(bool(allowed), limit, max(0, limit - int(used)), float(reset))

    async def reserve(self, key: str, cost: int, limit: int, window: float) -> Decision:
        state = self.state
        allowed, used, reset = await state.run(
            self._hit(keys=[state.key(f"limit:{key}")], args=[cost, limit, window, "r"]),
            self.timeout,
        )
        return Decision(bool(allowed), limit, max(0, limit - int(used)), float(reset))

    async def charge(self, key: str, cost: int, window: float) -> None:
        state = self.state
        await state.run(
            self._hit(keys=[state.key(f"limit:{key}")], args=[cost, -1, window]), self.timeout
        )

    async def acquire(self, key: str, limit: int) -> Decision:
        state, token = self.state, secrets.token_hex(8)
        allowed, used = await state.run(
            self._acquire(keys=[state.key(f"slots:{key}")], args=[token, limit, self.lease]),
            self.timeout,
        )
        if not allowed:
            return Decision(False, limit, 0, 1.0)
        self._held.setdefault(key, []).append(token)
        return Decision(True, limit, max(0, limit - int(used)), 0.0)

    async def release(self, key: str) -> None:
        tokens = self._held.get(key)
        if not tokens:
            return  # admitted uncounted while Redis was away
        token = tokens.pop()
        if not tokens:
            del self._held[key]
        with contextlib.suppress(errors.StateUnavailableError):  # else the lease runs out
            await self.state.run(
                self.state.client.zrem(self.state.key(f"slots:{key}"), token), self.timeout
            )
