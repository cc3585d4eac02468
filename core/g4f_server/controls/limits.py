"""Rate limits: requests and tokens per minute, concurrent requests.

Two layers:

- ``Limiter``: the storage interface, three atomic operations on named counters. The
  in-memory backend here serves one process; a shared backend (Redis) implements the
  same three calls, so every worker sees the same counts.
- ``RateLimits``: the operator's rules (``[limits]`` and ``[keys.NAME]`` of the config
  file) applied to one request: who it is (key name or client address), which public
  model, what is left. Over a limit: 429 ``rate_limit_exceeded`` with ``Retry-After`` and
  OpenAI's ``x-ratelimit-*`` headers.

Windows are fixed (aligned to multiples of the window length): one counter per key and
window, so a check is one atomic increment in any backend, and the count at which a
client gets its 429 is exact.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import istr

from g4f_server import errors
from g4f_server.appkeys import KEY_NAME
from g4f_server.controls.apikeys import OPEN_PATHS, OPEN_PREFIXES
from g4f_server.controls.tracked import Controlled, current, track
from g4f_server.logs import get_logger
from g4f_server.pipeline.scope import client_address, parse_trusted
from g4f_server.storage.interfaces import Decision, Limiter

log = get_logger("g4f_server.limits")
WINDOW = 60.0  # rpm and tpm are per minute
LIMIT_KINDS = ("rpm", "tpm", "concurrency")


@dataclass(slots=True)
class MemoryLimiter:
    """The in-process backend: a dict of (window start, count); stale windows are
    dropped as the dict grows, so memory stays bounded by the active keys."""

    clock: Any = time.monotonic
    _windows: dict[str, list[float]] = field(default_factory=dict)
    _slots: dict[str, int] = field(default_factory=dict)
    _prune_at: int = 1024
    # subject -> its counters' names (concurrency, tokens, requests), made once: three
    # new strings per request were three allocations and three hashes. Bounded: client
    # addresses are subjects too.
    _names: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    names_kept: int = 4096

    def _count(self, key: str, window: float) -> tuple[list[float], float]:
        now = self.clock()
        start = now - now % window  # the window start: exact, and no call
        return self._slot(key, start, now), start + window - now

    def _slot(self, key: str, start: float, now: float) -> list[float]:
        slot = self._windows.get(key)
        if slot is None or slot[0] != start:
            if len(self._windows) >= self._prune_at:
                self._prune(now)
            slot = self._windows[key] = [start, 0]  # whole counts: no int() per check
        return slot

    def _prune(self, now: float) -> None:
        # A window older than the longest we use (a minute) can be dropped.
        self._windows = {k: v for k, v in self._windows.items() if v[0] > now - 2 * WINDOW}
        self._prune_at = max(1024, 2 * len(self._windows))

    # The ``*_now`` calls are the work itself: ``RateLimits`` calls them directly (no
    # coroutine per check) when the limiter is this one; the async ones are the interface.
    def hit_now(self, key: str, cost: int, limit: int, window: float) -> Decision:
        slot, reset = self._count(key, window)
        used = slot[1]
        if used >= limit or used + cost > limit:
            return Decision(False, limit, max(0, int(limit - used)), reset)
        slot[1] = used + cost
        return Decision(True, limit, int(limit - slot[1]), reset)

    def reserve_now(self, key: str, cost: int, limit: int, window: float) -> Decision:
        slot, reset = self._count(key, window)
        used = slot[1]
        if used >= limit:
            return Decision(False, limit, 0, reset)
        slot[1] = used + cost
        return Decision(True, limit, max(0, int(limit - slot[1])), reset)

    def charge_now(self, key: str, cost: int, window: float) -> None:
        slot, _ = self._count(key, window)
        slot[1] = max(0, slot[1] + cost)  # a refund never takes the count below 0

    def acquire_now(self, key: str, limit: int) -> Decision:
        used = self._slots.get(key, 0)
        if used >= limit:
            return Decision(False, limit, 0, 1.0)
        self._slots[key] = used + 1
        return Decision(True, limit, limit - used - 1, 0.0)

    def release_now(self, key: str) -> None:
        used = self._slots.get(key, 0) - 1
        if used > 0:
            self._slots[key] = used
        else:
            self._slots.pop(key, None)

    def admit_now(self, ticket: Ticket, subject: str, rule: Rule) -> None:
        """``RateLimits.admit`` for this backend in one call: the clock read once, no
        coroutine and no ``Decision`` per check (together a third of the limits' cost
        per request). The same rules as the three calls it stands for."""
        names = self._names.get(subject)
        if names is None:
            names = self._counter_names(subject)
        concurrency = rule.concurrency
        if concurrency is not None:
            key = names[0]
            used = self._slots.get(key, 0)
            if used >= concurrency:
                raise _rate_limited("concurrency", subject, Decision(False, concurrency, 0, 1.0))
            self._slots[key] = used + 1
            if ticket.slots is None:
                ticket.slots = [key]
            else:
                ticket.slots.append(key)
        tpm, rpm = rule.tpm, rule.rpm
        if tpm is None and rpm is None:
            return
        now = self.clock()
        start = now - now % WINDOW  # as _count: exact, and no call
        reset = start + WINDOW - now
        rates = ticket.rates
        if rates is None:
            rates = ticket.rates = []
        windows = self._windows
        if tpm is not None:
            key = names[1]
            slot = windows.get(key)
            if slot is None or slot[0] != start:
                slot = self._slot(key, start, now)
            used = slot[1]
            if used >= tpm:  # a check of cost 0: refused once the count has reached it
                raise _rate_limited("tpm", subject, Decision(False, tpm, 0, reset))
            if ticket.token_keys is None:
                ticket.token_keys = [(key, tpm, 0)]
            else:
                ticket.token_keys.append((key, tpm, 0))
            rates.append((_TPM_NAMES, rule.tpm_text, tpm - used, reset))
        if rpm is not None:
            key = names[2]
            slot = windows.get(key)
            if slot is None or slot[0] != start:
                slot = self._slot(key, start, now)
            used = slot[1]
            if used + 1 > rpm:
                raise _rate_limited(
                    "rpm", subject, Decision(False, rpm, max(0, int(rpm - used)), reset)
                )
            slot[1] = used + 1
            rates.append((_RPM_NAMES, rule.rpm_text, rpm - used - 1, reset))

    def _counter_names(self, subject: str) -> tuple[str, str, str]:
        if len(self._names) >= self.names_kept:
            self._names.clear()
        names = self._names[subject] = ("c:" + subject, "t:" + subject, "r:" + subject)
        return names

    async def hit(self, key: str, cost: int, limit: int, window: float) -> Decision:
        return self.hit_now(key, cost, limit, window)

    async def reserve(self, key: str, cost: int, limit: int, window: float) -> Decision:
        return self.reserve_now(key, cost, limit, window)

    async def charge(self, key: str, cost: int, window: float) -> None:
        self.charge_now(key, cost, window)

    async def acquire(self, key: str, limit: int) -> Decision:
        return self.acquire_now(key, limit)

    async def release(self, key: str) -> None:
        self.release_now(key)


@dataclass(slots=True, frozen=True)
class Rule:
    """Limits of one subject (a key, a client address, a public model); None = none."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    # The limits' header texts, made once: ``str`` of an int is ~1k instructions.
    rpm_text: str = field(default="", init=False, compare=False, repr=False)
    tpm_text: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rpm_text", "" if self.rpm is None else str(self.rpm))
        object.__setattr__(self, "tpm_text", "" if self.tpm is None else str(self.tpm))

    @classmethod
    def parse(cls, where: str, table: Mapping[str, Any]) -> Rule:
        values: dict[str, int] = {}
        for kind in LIMIT_KINDS:
            value = table.get(kind)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}.{kind} must be a whole number of at least 1")
            values[kind] = value
        return cls(**values)

    def __bool__(self) -> bool:
        return any(getattr(self, kind) is not None for kind in LIMIT_KINDS)


def _rate_limited(kind: str, subject: str, decision: Decision) -> errors.RateLimitError:
    what = {"rpm": "requests per minute", "tpm": "tokens per minute"}.get(
        kind, "concurrent requests"
    )
    error = errors.RateLimitError(
        f"Rate limit reached for {subject.split(':', 1)[-1]}: {decision.limit} {what}. "
        f"Try again in {max(1, math.ceil(decision.reset))}s.",
        retry_after=max(1.0, math.ceil(decision.reset)),
    )
    if kind != "concurrency":
        error.headers.update(_headers(kind, decision))
    error.kind = kind  # type: ignore[attr-defined]  # read by the middleware (metrics)
    return error


# (limit, remaining, reset) header names by kind; istr: no case-folding per request.
_NAMES = {
    kind: tuple(istr(f"x-ratelimit-{what}-{unit}") for what in ("limit", "remaining", "reset"))
    for kind, unit in (("rpm", "requests"), ("tpm", "tokens"))
}


_RPM_NAMES, _TPM_NAMES = _NAMES["rpm"], _NAMES["tpm"]


def _reset_text(reset: float) -> str:
    # printf-style: the same text as f"{max(0.0, reset):.3f}s" for 60% of its cost.
    return "%.3fs" % (reset if reset > 0.0 else 0.0)


def _headers(kind: str, decision: Decision) -> dict[str, str]:
    limit, remaining, reset = _NAMES[kind]
    return {
        limit: str(decision.limit),
        remaining: str(decision.remaining),
        reset: _reset_text(decision.reset),
    }


class Ticket(Controlled):
    """What one admitted request holds: the concurrency slots to give back, the token
    counters to charge when the answer is done, and the decisions its headers report.
    It is the request's ``Controlled`` too (made by the metrics' on_start when metrics
    are on, with no limiter until the limits admit it): one object per
    request for both. A plain slotted class whose lists are made only when needed."""

    __slots__ = ("limiter", "local", "reserved_until", "uncounted")

    def __init__(
        self, limiter: Limiter | None = None, started: float = 0.0, metrics: Any = None
    ) -> None:
        # Controlled's fields, set here (its __init__ would be one more call per request).
        self.started = started
        self.metrics = metrics
        self.streaming = False
        self.limited: str | None = None
        self.limiter = limiter  # None: not admitted by the limits (yet, or an open path)
        self.local = limiter if type(limiter) is MemoryLimiter else None
        self.slots: list[str] | None = None
        # (counter, its limit, tokens reserved on it) of each tokens-per-minute limit
        self.token_keys: list[tuple[str, int, int]] | None = None
        # (header names, limit text, remaining, reset) of the rpm and tpm checks, for the
        # headers: the names and the limit's text are made once per kind and limit.
        self.rates: list[tuple[tuple[istr, istr, istr], str, int, float]] | None = None
        # The state store was away at admission (fail-open): nothing more is counted.
        self.uncounted = False
        # When the window of the reservations (``reserve_tokens``) ends (monotonic):
        # settled against the real count when the answer is done.
        self.reserved_until = 0.0

    def _settle(self, tokens: int) -> list[tuple[str, int]]:
        """(counter, what to add) to settle ``tokens``: the real count less what was
        reserved (negative: a refund). Once the reservation's window is over it was
        counted there; a new window gets only the tokens beyond it, never a refund."""
        keys, self.token_keys = self.token_keys, None
        rolled = bool(self.reserved_until) and time.monotonic() >= self.reserved_until
        out = []
        for key, _, reserved in keys or ():
            delta = tokens - reserved
            if delta > 0 or (delta < 0 and not rolled):
                out.append((key, delta))
        return out

    def charge_now(self, tokens: int) -> bool:
        """Settle in memory without a coroutine; False: await ``charge_tokens``."""
        local = self.local
        if local is None:
            return False
        keys, self.token_keys = self.token_keys, None
        if not keys:
            return True
        # _settle and local.charge_now per counter, inlined: the clock read once, no list.
        # (reserved_until is on the limiter's clock here: reserve_tokens_now sets it.)
        now = local.clock()
        rolled = self.reserved_until and now >= self.reserved_until
        start = now - now % WINDOW  # as _count: exact, and no call
        windows = local._windows
        for key, _, reserved in keys:
            delta = tokens - reserved
            if delta > 0 or (delta < 0 and not rolled):
                slot = windows.get(key)
                if slot is None or slot[0] != start:
                    slot = local._slot(key, start, now)
                total = slot[1] + delta  # a refund never takes it below 0 (max(), inlined)
                slot[1] = total if total > 0 else 0
        return True

    def release_now(self) -> bool:
        """Give the slots back in memory without a coroutine; False: await ``release``."""
        local = self.local
        if local is None:
            return False
        slots, self.slots = self.slots, None
        counts = local._slots
        for key in slots or ():  # local.release_now, inlined
            used = counts.get(key, 0) - 1
            if used > 0:
                counts[key] = used
            else:
                counts.pop(key, None)
        return True

    async def charge_tokens(self, tokens: int) -> None:
        """Settle the answer's real token count (or 0: the request failed, a refund)."""
        if self.charge_now(tokens):
            return
        try:
            for key, delta in self._settle(tokens):
                await self.limiter.charge(key, delta, WINDOW)
        except errors.StateUnavailableError:
            # The answer is already made: failing it now would help nobody.
            log.warning("tokens_not_counted", reason="state store unavailable")

    async def release(self) -> None:
        if self.release_now():
            return
        slots, self.slots = self.slots, None
        for key in slots or ():
            await self.limiter.release(key)

    def settle_now(self) -> bool:
        """What an ended request still holds, given back in memory: the refund of tokens
        reserved for an answer that never finished, then the slots. False: await
        ``settle``."""
        if self.token_keys is not None and not self.charge_now(0):
            return False
        return self.slots is None or self.release_now()

    async def settle(self) -> None:
        if self.token_keys is not None:
            await self.charge_tokens(0)  # never finished (failed, cut off): a refund
        if self.slots is not None:
            await self.release()


@dataclass(slots=True)
class RateLimits:
    """The operator's rules applied through a ``Limiter``."""

    limiter: Limiter
    per_key: Rule = Rule()  # every key without limits of its own
    per_client: Rule = Rule()  # requests without a key, by client address
    keys: Mapping[str, Rule] = field(default_factory=dict)
    models: Mapping[str, Rule] = field(default_factory=dict)  # public model glob -> rule
    trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    # The metrics' on_start, before the edge's key check, has made the request's Controlled.
    after_metrics: bool = False
    # The shared counters are away (or late): 503 (True) or admitted uncounted (False).
    fail_closed: bool = False
    # key name -> ("key:NAME", its rule): the subject and rule of a keyed request in one
    # lookup (names come from the config; only names that passed the key check go in).
    _by_key: dict[str, tuple[str, Rule]] = field(default_factory=dict)

    def of_key(self, key_name: str) -> tuple[str, Rule]:
        found = self._by_key.get(key_name)
        if found is None:
            found = self._by_key[key_name] = (f"key:{key_name}", self.subject_rule(key_name))
        return found

    def model_rule(self, model: str) -> tuple[str, Rule] | None:
        """The rule of a public model name: the exact name, else the first glob."""
        name = model.lower()
        rule = self.models.get(name)
        if rule is not None:
            return name, rule
        for glob, rule in self.models.items():
            if fnmatch.fnmatchcase(name, glob):
                return glob, rule
        return None

    def subject_rule(self, key_name: str | None) -> Rule:
        if key_name is None:
            return self.per_client
        rule = self.keys.get(key_name)  # not ``or``: Rule.__bool__ looks at every field
        return rule if rule is not None else self.per_key

    async def admit(self, ticket: Ticket, subject: str, rule: Rule) -> None:
        """Count one request of ``subject`` against ``rule``; raise the 429 when over.
        Concurrency first: a request refused for it has not used a request of the
        minute. Slots taken before a refusal are given back by ``ticket.release``."""
        if ticket.local is not None:
            ticket.local.admit_now(ticket, subject, rule)
            return
        if ticket.uncounted:
            return
        try:
            await self._admit_shared(ticket, subject, rule)
        except errors.StateUnavailableError:
            if self.fail_closed:
                raise
            # Decided at once: the rest of this request's checks (and its token charge)
            # would only wait out the same bound again.
            ticket.uncounted = True
            ticket.token_keys = None
            log.warning("rate_limit_not_counted", reason="state store unavailable")

    async def _admit_shared(self, ticket: Ticket, subject: str, rule: Rule) -> None:
        limiter = self.limiter
        if rule.concurrency is not None:
            key = "c:" + subject
            decision = await limiter.acquire(key, rule.concurrency)
            if not decision.allowed:
                raise _rate_limited("concurrency", subject, decision)
            if ticket.slots is None:
                ticket.slots = [key]
            else:
                ticket.slots.append(key)
        rates = ticket.rates
        if rates is None:
            rates = ticket.rates = []
        if rule.tpm is not None:
            key = "t:" + subject
            decision = await limiter.hit(key, 0, rule.tpm, WINDOW)
            if not decision.allowed:
                raise _rate_limited("tpm", subject, decision)
            if ticket.token_keys is None:
                ticket.token_keys = [(key, rule.tpm, 0)]
            else:
                ticket.token_keys.append((key, rule.tpm, 0))
            rates.append((_TPM_NAMES, str(decision.limit), decision.remaining, decision.reset))
        if rule.rpm is not None:
            decision = await limiter.hit("r:" + subject, 1, rule.rpm, WINDOW)
            if not decision.allowed:
                raise _rate_limited("rpm", subject, decision)
            rates.append((_RPM_NAMES, str(decision.limit), decision.remaining, decision.reset))


def parse_limits(
    limiter: Limiter,
    limits: Mapping[str, Any],
    keys: Mapping[str, Mapping[str, Any]],
    trusted_proxies: Sequence[str] = (),
    fail_closed: bool = False,
) -> RateLimits | None:
    """The ``[limits]`` table and the limits of ``[keys.NAME]``; None when nothing is
    limited (the middleware then skips the limiter entirely)."""
    per_key = Rule.parse("limits.per_key", limits.get("per_key") or {})
    per_client = Rule.parse("limits.per_client", limits.get("per_client") or {})
    unknown = sorted(set(limits) - {"per_key", "per_client", "models"})
    if unknown:
        raise ValueError(f"limits: unknown table(s) {', '.join(unknown)}")
    models = {
        name.lower(): Rule.parse(f"limits.models.{name}", table)
        for name, table in (limits.get("models") or {}).items()
    }
    key_rules = {name: Rule.parse(f"keys.{name}", table) for name, table in keys.items()}
    key_rules = {name: rule for name, rule in key_rules.items() if rule}
    if not (per_key or per_client or key_rules or any(models.values())):
        return None
    trusted = parse_trusted(trusted_proxies)
    rate_limits = RateLimits(limiter, per_key, per_client, key_rules, models, trusted)
    rate_limits.fail_closed = fail_closed
    return rate_limits


# --- wiring: the middleware (who, how many) and the per-model gate (which model) ------

LIMITS = web.AppKey("limits", RateLimits)


def limits_middleware() -> web.Middleware:
    """The app's limits middleware: one per app, which reads the app's ``LIMITS`` on
    its first request and keeps it (an app key read per request was ~1k instructions).

    Installed only where the edge's plain call (``admit_in_edge``) cannot do: a shared
    limiter, whose calls are awaited, or no metrics, whose on_done would give back what
    the request holds. It returns ``_admit_and_settle``'s coroutine, which admits, runs
    the handler and settles."""
    found: list[RateLimits] = []

    def limits_middleware(request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
        """Counts every request that passed the key check (open paths are not counted)."""
        if not found:
            found.append(request.app[LIMITS])
        limits = found[0]
        try:
            key_name = request[KEY_NAME]
        except KeyError:
            key_name = None
        whom = counted_as(limits, request, key_name)
        if whom is None:
            return handler(request)  # type: ignore[no-any-return]
        if limits.after_metrics:  # the metrics' on_start made it, without a limiter
            ticket: Ticket = current()  # type: ignore[assignment]
            limiter = ticket.limiter = limits.limiter
            ticket.local = limiter if type(limiter) is MemoryLimiter else None
        else:
            ticket = Ticket(limits.limiter)
            track(ticket)
        return _admit_and_settle(limits, ticket, *whom, request, handler)

    return limits_middleware  # type: ignore[return-value]


def counted_as(
    limits: RateLimits, request: web.Request, key_name: str | None
) -> tuple[str, Rule] | None:
    """The subject and rule a request counts against (its key's, else its address's), or
    None for one the limits do not count: an open path (the edge names a key only off
    them, so a keyed request needs no look) or a preflight."""
    if not key_name:
        path = request.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None
    if request.method == "OPTIONS":
        return None
    if key_name:
        keyed = limits._by_key.get(key_name)  # of_key, without its frame once known
        return keyed if keyed is not None else limits.of_key(key_name)
    return f"ip:{client_address(request, limits.trusted)}", limits.per_client


def admit_in_edge(limits: RateLimits) -> Callable[[web.Request, str | None], None]:
    """``limits_middleware``'s admission as a plain call the edge makes after the key
    check (``wiring.ON_ADMIT``), with the key's name in hand: on the in-memory counters
    with metrics on, whose on_start made the request's ``Ticket`` and whose on_done gives
    back what it holds. The same requests are counted, by the same rules."""
    limiter = limits.limiter
    if type(limiter) is not MemoryLimiter:
        raise TypeError("a shared limiter's calls are awaited: limits_middleware admits")

    def admit(request: web.Request, key_name: str | None) -> None:
        whom = counted_as(limits, request, key_name)
        if whom is None:
            return
        subject, rule = whom  # not ``*whom``: a star-call is not specialised
        ticket: Ticket = current()  # type: ignore[assignment]
        ticket.limiter = ticket.local = limiter
        try:
            limiter.admit_now(ticket, subject, rule)  # slots it took: the metrics give back
        except errors.RateLimitError as exc:
            ticket.limited = getattr(exc, "kind", "requests")
            raise

    return admit


async def _admit_and_settle(
    limits: RateLimits,
    ticket: Ticket,
    subject: str,
    rule: Rule,
    request: web.Request,
    handler: Any,
) -> web.StreamResponse:
    """Admit, run the handler, and give back what the request still holds, all inside
    the edge (so a 503 of the shared limiter is answered as any error)."""
    try:
        if ticket.local is not None:  # the memory backend: no coroutine for the checks
            ticket.local.admit_now(ticket, subject, rule)
        else:
            await limits.admit(ticket, subject, rule)
        return await handler(request)  # type: ignore[no-any-return]
    except errors.RateLimitError as exc:
        ticket.limited = getattr(exc, "kind", "requests")
        raise
    finally:
        if not ticket.settle_now():
            await ticket.settle()


def rate_headers(ticket: Ticket, headers: Any) -> None:
    """What is left, on every answer (streamed ones too): from wiring's on_prepare."""
    last, reset_text = None, ""
    for names, limit, remaining, reset in ticket.rates or ():
        headers[names[0]] = limit
        headers[names[1]] = str(remaining)
        if reset != last:  # rpm and tpm share one window: formatted once (~3k each)
            last, reset_text = reset, "%.3fs" % (reset if reset > 0.0 else 0.0)
        headers[names[2]] = reset_text


async def admit_model(limits: RateLimits, ticket: Ticket, model: str) -> None:
    """The public model's own limits (``[limits.models]``), once the body is read."""
    found = limits.model_rule(model)
    if found is not None:
        glob, rule = found
        await limits.admit(ticket, f"model:{glob}", rule)


def admit_model_now(limits: RateLimits, ticket: Ticket, model: str) -> None:
    """``admit_model`` on the memory backend (``ticket.local`` set): no coroutine."""
    found = limits.model_rule(model)
    if found is not None:
        glob, rule = found
        ticket.local.admit_now(ticket, f"model:{glob}", rule)  # type: ignore[union-attr]


def reserve_tokens_now(ticket: Ticket, estimate: int) -> bool:
    """``reserve_tokens`` on the memory backend without a coroutine (the same rules as
    its ``reserve_now`` per counter, the clock read once and no ``Decision`` unless
    refused); False: the limiter is shared, await ``reserve_tokens``."""
    local = ticket.local
    if local is None:
        return False
    keys = ticket.token_keys
    if not keys or ticket.uncounted:
        return True
    now = local.clock()
    start = now - now % WINDOW  # as _count: exact, and no call
    reset = start + WINDOW - now
    windows = local._windows
    for index, (key, limit, _) in enumerate(keys):
        slot = windows.get(key)
        if slot is None or slot[0] != start:
            slot = local._slot(key, start, now)
        used = slot[1]
        if used >= limit:
            del keys[index:]
            ticket.charge_now(0)
            raise _rate_limited("tpm", key[2:], Decision(False, limit, 0, reset))
        cost = estimate if estimate < limit else limit  # min(), without its call
        slot[1] = used + cost
        keys[index] = (key, limit, cost)
    ticket.reserved_until = now + reset  # the limiter's clock: charge_now reads the same
    return True


async def reserve_tokens(limits: RateLimits, ticket: Ticket, estimate: int) -> None:
    """Count ``estimate`` tokens against every tokens-per-minute counter of the request
    before its answer starts, so that concurrent requests see each other (checked only
    at the end, 20 requests in flight all passed a budget of 60). A request refused here
    gets its 429 now; one admitted is settled with its real count (``charge_tokens``).
    Admitted while anything of the minute is left, as before: one by one, a budget is
    passed by at most the last request's tokens, as it always was; a reservation is
    at most the whole budget (a lost settlement cannot block more than a minute)."""
    keys = ticket.token_keys
    if not keys or ticket.uncounted:
        return
    for index, (key, limit, _) in enumerate(keys):
        cost = min(estimate, limit)
        try:
            if ticket.local is not None:
                decision = ticket.local.reserve_now(key, cost, limit, WINDOW)
                now = ticket.local.clock()  # charge_now compares on the limiter's clock
            else:
                decision = await limits.limiter.reserve(key, cost, limit, WINDOW)
                now = time.monotonic()  # _settle compares on this clock
        except errors.StateUnavailableError:
            if limits.fail_closed:
                del keys[index:]  # the earlier reservations are given back
                await ticket.charge_tokens(0)
                raise
            ticket.uncounted, ticket.token_keys = True, None
            log.warning("rate_limit_not_counted", reason="state store unavailable")
            return
        if not decision.allowed:
            del keys[index:]
            await ticket.charge_tokens(0)
            raise _rate_limited("tpm", key[2:], decision)
        keys[index] = (key, limit, cost)
        ticket.reserved_until = now + decision.reset
