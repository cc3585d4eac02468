"""What the metrics and the rate limits keep about one request (``Controlled``), under
one request key."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class Controlled:
    """What the metrics and the rate limits keep about one request, in one object under
    one request key: each of their per-request hooks then does one lookup, instead of
    one per value (and a missing key costs a KeyError inside aiohttp's mapping). Made by
    the outermost of the two middlewares that is installed; with rate limits on it is
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


CONTROLLED: web.RequestKey[Controlled] = web.RequestKey("controlled")
