"""A provider's live health: what its real calls and probes said lately.

Every call the pipeline makes to a provider (a chat until its first part of the answer,
an image, speech or transcription call until its result) and every probe
(``probes.py``) ends in ``ok`` or ``failed`` here. The cost per call is a clock read, a
tuple appended to a bounded deque and a few attribute writes; everything derived (the
success rate, the median latency, the request rate) is computed when someone reads it.

The status it gives:

- ``working``: the last call or probe succeeded (before any: the model list loaded);
- ``degraded``: it answers, but the last real call failed, under half of the recent ones
  succeeded, or it serves a built-in model list (``FallbackModels``);
- ``down``: a probe failed, the cooldown is open (``cooldown.py``: 3 failures in a row),
  or (before any call) listing its models failed;
- ``needs_auth``: the last call or probe was refused for a missing or bad login.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from g4f_server import errors

WINDOW = 100  # calls kept for the success rate and the latency median...
WINDOW_SECONDS = 900.0  # ...of the last 15 minutes only
DEGRADED_BELOW = 0.5  # success rate under which a provider that answers is degraded
# A provider whose last real call failed goes behind the others for this long (routing):
# long enough to stop sending every request to a failing provider first, short enough
# that one transient failure does not lose it its place for good when nothing probes it.
DEMOTED_FOR = 60.0
RECENT_ERRORS = 20  # kept per provider for the status page


class Outcome(NamedTuple):
    """A tuple (a frozen dataclass's ``__init__`` costs ~3x as much on every request)."""

    at: float  # wall clock (time.time())
    seconds: float  # latency of a success; -1.0 for a failure
    probe: bool


@dataclass(slots=True, frozen=True)
class RecentError:
    at: float
    code: str
    status: int
    probe: bool


@dataclass(slots=True)
class Vitals:
    """What one provider's calls said lately (see the module docstring)."""

    clock: Any = time.time
    window: deque[Outcome] = field(default_factory=lambda: deque(maxlen=WINDOW))
    errors: deque[RecentError] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    last_ok: bool | None = None  # the last call or probe; None: none yet
    checked_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None  # the error code of the last failure
    last_error_at: float | None = None
    needs_auth: bool = False  # the last failure was a refused login
    probe_failed: bool = False  # the last outcome was a failed probe
    # Real calls per minute, as two minute buckets (a sliding estimate, no timestamps kept).
    _minute: int = 0
    _this_minute: int = 0
    _last_minute: int = 0

    def ok(self, seconds: float, probe: bool = False) -> None:
        # On every request: kept to a clock read, a tuple and attribute writes.
        now = self.clock()
        self.window.append((now, seconds, probe))  # type: ignore[arg-type]  # an Outcome
        self.last_ok = True
        self.checked_at = self.last_success_at = now
        if self.needs_auth or self.probe_failed:
            self.needs_auth = self.probe_failed = False
        if not probe:
            if now // 60 == self._minute:
                self._this_minute += 1
            else:
                self._count(now)

    def failed(self, error: errors.G4FError, *, probe: bool = False) -> None:
        now = self.clock()
        self.window.append(Outcome(now, -1.0, probe))
        self.errors.append(RecentError(now, error.code, error.status, probe))
        self.last_ok, self.checked_at = False, now
        self.last_error, self.last_error_at = error.code, now
        self.needs_auth = isinstance(error, errors.ProviderAuthError)
        self.probe_failed = probe
        if not probe:
            self._count(now)

    def _count(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._last_minute = self._this_minute if minute == self._minute + 1 else 0
            self._minute, self._this_minute = minute, 0
        self._this_minute += 1

    # --- read side: computed on demand -------------------------------------------------

    def recent(self) -> list[Outcome]:
        since = self.clock() - WINDOW_SECONDS
        return [Outcome(*o) for o in self.window if o[0] >= since]

    def success_rate(self) -> float | None:
        recent = self.recent()
        if not recent:
            return None
        return sum(o.seconds >= 0 for o in recent) / len(recent)

    def latency_p50_ms(self) -> float | None:
        times = sorted(o.seconds for o in self.recent() if o.seconds >= 0)
        if not times:
            return None
        middle = len(times) // 2
        median = times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2
        return round(median * 1000, 1)

    def requests_per_minute(self) -> float:
        """Real calls in the last 60 s, estimated from two minute buckets (the previous
        minute's count weighted by how much of it the last 60 s still cover)."""
        now = self.clock()
        minute = int(now // 60)
        if minute == self._minute:
            current, previous = self._this_minute, self._last_minute
        elif minute == self._minute + 1:
            current, previous = 0, self._this_minute
        else:
            return 0.0
        return round(current + previous * (1 - (now % 60) / 60), 1)

    def demoted(self) -> bool:
        """Whether routing should try this provider after the others (its last real call
        failed less than DEMOTED_FOR seconds ago)."""
        return (
            self.last_ok is False
            and self.checked_at is not None
            and self.clock() - self.checked_at < DEMOTED_FOR
        )

    def status(self, *, listed: bool, fallback: bool, cooling: bool) -> str:
        """``working``, ``degraded``, ``down`` or ``needs_auth``; ``listed``: its model
        list loaded, ``fallback``: a built-in one, ``cooling``: the cooldown is not closed."""
        if self.last_ok is None:
            if not listed:
                return "down"
            return "degraded" if fallback or cooling else "working"
        if not self.last_ok:
            if self.needs_auth:
                return "needs_auth"
            return "down" if self.probe_failed or cooling else "degraded"
        rate = self.success_rate()
        if fallback or cooling or (rate is not None and rate < DEGRADED_BELOW):
            return "degraded"
        return "working"

    def report(self) -> dict[str, Any]:
        """The fields /v1/providers adds (times as Unix seconds)."""
        rate = self.success_rate()
        return {
            "checked_at": _stamp(self.checked_at),
            "last_success_at": _stamp(self.last_success_at),
            "last_error": self.last_error,
            "last_error_at": _stamp(self.last_error_at),
            "latency_p50_ms": self.latency_p50_ms(),
            "success_rate": None if rate is None else round(rate, 3),
            "requests_per_minute": self.requests_per_minute(),
        }


def _stamp(at: float | None) -> int | None:
    return None if at is None else int(at)
