"""Provider cooldown: a provider that fails again and again is skipped for a while, then
probed with one request (half-open) before it is trusted again.

Only failures that say something about the provider count: a login it needs for this
one request (``ProviderAuthError``, e.g. anonymous vision on Copilot) is the request's
matter, not the provider's health.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from g4f_server import errors

THRESHOLD = 3  # consecutive failures before a cooldown
COOLDOWN = 30.0  # seconds skipped, then one probe


@dataclass(slots=True)
class ProviderHealth:
    threshold: int = THRESHOLD
    cooldown: float = COOLDOWN
    clock: Any = time.monotonic
    consecutive: int = 0
    open_until: float = 0.0  # skipped until then (monotonic clock)
    probe_since: float | None = None  # a half-open probe is out since then
    failures: dict[str, int] = field(default_factory=dict)  # error code -> count (metrics)
    last_error: str | None = None

    def state(self) -> str:
        if self.open_until == 0.0:
            return "closed"
        return "open" if self.clock() < self.open_until else "half_open"

    def available(self) -> bool:
        """Whether to try this provider now; in half-open, True for one probe at a time
        (a probe that never reports back is given up after a cooldown)."""
        if self.open_until == 0.0:
            return True
        now = self.clock()
        if now < self.open_until:
            return False
        if self.probe_since is not None and now - self.probe_since < self.cooldown:
            return False
        self.probe_since = now
        return True

    def failed(self, error: errors.ProviderError) -> None:
        self.failures[error.code] = self.failures.get(error.code, 0) + 1
        if isinstance(error, errors.ProviderAuthError):
            return
        self.consecutive += 1
        self.last_error = error.code
        if self.probe_since is not None or self.consecutive >= self.threshold:
            self.open_until = self.clock() + self.cooldown
            self.probe_since = None

    def trip(self, error: errors.G4FError) -> None:
        """Open at once: a failed probe (probes.py) is the provider's cheapest request
        failing, so it is not tried again until the cooldown is over or a probe passes.
        Not counted in ``failures`` (the metric counts real requests)."""
        if isinstance(error, errors.ProviderAuthError):
            return
        self.last_error = error.code
        self.open_until = self.clock() + self.cooldown
        self.probe_since = None

    def succeeded(self) -> None:
        self.consecutive = 0
        self.open_until = 0.0
        self.probe_since = None

    def report(self) -> dict[str, Any]:
        state = self.state()
        report: dict[str, Any] = {
            "state": state,
            "consecutive_failures": self.consecutive,
            "last_error": self.last_error,
            "failures": dict(self.failures),
        }
        if state == "open":
            report["retry_in"] = round(self.open_until - self.clock(), 3)
        return report
