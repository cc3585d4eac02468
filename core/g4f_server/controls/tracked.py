"""What the metrics and the rate limits keep about one request (``Controlled``), in one
context variable."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any


class Controlled:
    """What the metrics and the rate limits keep about one request, in one object: each of
    their per-request hooks then does one lookup, instead of one per value. Made by the
    metrics' on_start, else by the limits' middleware; with rate limits on it is
    their ``limits.Ticket`` (a subclass), so a request has one such object, not two."""

    __slots__ = ("limited", "metrics", "rates", "slots", "started", "streaming", "token_keys")

    def __init__(self, started: float = 0.0, metrics: Any = None) -> None:
        self.started = started  # perf_counter at the metrics' on_start
        self.metrics = metrics  # metrics.Metrics when metrics are on
        self.streaming = False  # counted in the streams-in-progress gauge
        self.limited: str | None = None  # the limit kind that refused it
        # Set by the limits (limits.Ticket): what its headers report, what it reserved,
        # the concurrency slots it holds (the metrics' on_done gives back what is left).
        self.rates: Any = None
        self.token_keys: Any = None
        self.slots: Any = None


_controlled: ContextVar[Controlled | None] = ContextVar("g4f_controlled", default=None)
# The request's Controlled (None: one the controls did not take up), kept in a context
# variable rather than under a request key: aiohttp runs each request in a task of its
# own, whose context starts as a copy of the connection task's, where this is never set
# (as the request id's, logs.bind_request_id). A read is one C call (~150 instructions),
# ``request[KEY]`` is aiohttp's Python ``__getitem__`` (~500), and the controls read it
# six times a request; setting it costs ~750 against ~1,150.
current: Callable[[], Controlled | None] = _controlled.get
track: Callable[[Controlled], Token[Controlled | None]] = _controlled.set
