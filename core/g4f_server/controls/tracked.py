"""What the metrics and the rate limits keep about one request (``Controlled``), under
one request key."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class Controlled:
    """What the metrics and the rate limits keep about one request, in one object under
    one request key: each of their per-request hooks then does one lookup, instead of
    one per value (and a missing key costs a KeyError inside aiohttp's mapping). Made by
    the outermost of the two middlewares that is installed."""

    __slots__ = ("limited", "metrics", "started", "streaming", "ticket")

    def __init__(self, started: float = 0.0, metrics: Any = None) -> None:
        self.started = started  # perf_counter at the metrics middleware
        self.metrics = metrics  # metrics.Metrics when metrics are on
        self.streaming = False  # counted in the streams-in-progress gauge
        self.ticket: Any = None  # limits.Ticket once the limits admitted it
        self.limited: str | None = None  # the limit kind that refused it


CONTROLLED: web.RequestKey[Controlled] = web.RequestKey("controlled")
