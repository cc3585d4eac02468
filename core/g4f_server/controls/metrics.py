"""``GET /metrics`` in Prometheus' text format (prometheus-client), off unless ``--metrics``.

One registry per app (tests run many apps in one process). The per-request numbers
(requests, latency, time to first token, tokens, streams in progress) are plain Python
counts in ``_Live``, read by a collector at scrape time: a labelled prometheus_client
child takes a lock per ``inc`` and a histogram's ``observe`` walks its buckets taking one
lock per bucket, which was most of the metrics' cost per request. Everything runs on the
event loop's thread, so plain counts need no lock. Provider failures are not counted here
at all: the registry's entries keep them (``health.py``) and a collector reads them at
scrape time.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from g4f_server.appkeys import SERVED_BY
from g4f_server.controls.limits import Ticket
from g4f_server.controls.tracked import Controlled, current, track
from g4f_server.providers.registry import REGISTRY

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BOUNDS = [*(floatToGoString(b) for b in _LATENCY_BUCKETS), "+Inf"]


class _ProviderFailures(Collector):
    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "g4f_provider_failures",
            "Provider failures by error code",
            labels=("provider", "code"),
        )
        registry = self._app.get(REGISTRY)
        for entry in registry.ordered if registry is not None else ():
            for code, count in entry.health.failures.items():
                family.add_metric((entry.name, code), count)
        yield family


class _Histogram:
    """One label set's observations: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: the first bound >= seconds, Prometheus' "le" (less or equal).
        self.counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip(_BOUNDS, self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class _Live(Collector):
    """The hot-path numbers, as plain counts, turned into metric families when scraped."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str, str], int] = {}
        self.latency: dict[str, _Histogram] = {}  # route -> observations
        self.first_token: dict[str, _Histogram] = {}  # provider -> observations
        self.tokens: dict[str, list[int]] = {}  # provider -> [prompt, completion]
        self.streams = 0

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "g4f_requests",
            "Requests by route, method, status, provider and served model",
            labels=("route", "method", "status", "provider", "model"),
        )
        for labels, count in self.requests.items():
            requests.add_metric(labels, count)
        yield requests
        yield self._histograms(
            "g4f_request_duration_seconds", "Time to the whole answer, by route", "route",
            self.latency,
        )  # fmt: skip
        yield self._histograms(
            "g4f_time_to_first_token_seconds",
            "Time from the request to the provider's first part of the answer",
            "provider",
            self.first_token,
        )
        tokens = CounterMetricFamily(
            "g4f_tokens", "Tokens by provider and kind", labels=("provider", "kind")
        )
        for provider, (prompt, completion) in self.tokens.items():
            tokens.add_metric((provider, "prompt"), prompt)
            tokens.add_metric((provider, "completion"), completion)
        yield tokens
        yield GaugeMetricFamily(
            "g4f_streams_in_progress", "Streamed answers being sent", value=self.streams
        )

    @staticmethod
    def _histograms(
        name: str, documentation: str, label: str, by_label: dict[str, _Histogram]
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, documentation, labels=(label,))
        for value, histogram in by_label.items():
            family.add_metric((value,), histogram.buckets(), histogram.total)
        return family


class Metrics:
    def __init__(self, app: web.Application, public: bool) -> None:
        self.public = public
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.live = live = _Live()
        registry.register(live)
        # Rare events keep prometheus_client's own counters (children cached by label).
        self.rate_limited = Counter(
            "g4f_rate_limited", "Requests refused by a rate limit", ("kind",), registry=registry
        )
        self.cache = Counter(
            "g4f_cache", "Response cache lookups by result", ("result",), registry=registry
        )
        registry.register(_ProviderFailures(app))
        # The standard process_* metrics (CPU, memory, open files, start time); with
        # --workers, metrics_shared.py gives them for all the workers together.
        ProcessCollector(registry=registry)
        self._app = app
        self._children: dict[tuple[Counter, str], Any] = {}
        # Rate limits are on too (wiring.setup): the request's state is their Ticket.
        self.limited = False

    def render_body(self) -> bytes:
        """The text of a scrape: this process's numbers (metrics_shared.py replaces it
        with every worker's)."""
        return generate_latest(self.registry)

    def render(self) -> web.Response:
        return web.Response(body=self.render_body(), headers={"Content-Type": CONTENT_TYPE})

    def failure_counts(self) -> Iterator[tuple[str, str, int]]:
        registry = self._app.get(REGISTRY)
        for entry in registry.ordered if registry is not None else ():
            for code, count in entry.health.failures.items():
                yield entry.name, code, count

    def count(self, labels: tuple[str, str, str, str, str], seconds: float) -> None:
        live = self.live
        live.requests[labels] = live.requests.get(labels, 0) + 1
        histogram = live.latency.get(labels[0])
        if histogram is None:
            histogram = live.latency[labels[0]] = _Histogram()
        histogram.observe(seconds)

    def first_token(self, started: float, provider: str) -> None:
        histogram = self.live.first_token.get(provider)
        if histogram is None:
            histogram = self.live.first_token[provider] = _Histogram()
        histogram.observe(time.perf_counter() - started)

    def tokens(self, provider: str, prompt: int, completion: int) -> None:
        counts = self.live.tokens.get(provider)
        if counts is None:
            counts = self.live.tokens[provider] = [0, 0]
        counts[0] += prompt
        counts[1] += completion

    def inc(self, counter: Counter, label: str) -> None:
        """One of a labelled prometheus_client counter; ``labels()`` once per label."""
        child = self._children.get((counter, label))
        if child is None:
            child = self._children[(counter, label)] = counter.labels(label)
        child.inc()


METRICS = web.AppKey("metrics", Metrics)


_STATUS_TEXTS: dict[int, str] = {}  # status -> its label text (a few dozen codes)


def on_start(metrics: Metrics) -> Callable[[web.Request], web.StreamResponse | None]:
    """What the metrics do as a request reaches the edge, before anything else
    (``wiring.ON_START``), made once per app: the public ``/metrics`` answered before the
    key check (and not counted), else the request's state and its clock. The edge calls
    it and ``on_done`` as it ends: a middleware around the edge was a coroutine that every
    wake-up of the request passed through (the upstream's answer, each read of a stream)."""
    public = metrics.public
    limited = metrics.limited  # rate limits are on too: set by wiring.setup before this

    def start(request: web.Request) -> web.StreamResponse | None:
        if public and request.path == "/metrics":
            return metrics.render()
        if limited:  # one object for both (the limits admit it)
            track(Ticket(None, perf_counter(), metrics))
        else:
            track(Controlled(perf_counter(), metrics))
        return None

    return start


_SETTLING: set[asyncio.Task[None]] = set()  # settlements left to finish (kept referenced)


def on_done(metrics: Metrics) -> Callable[[web.Request, web.StreamResponse | None], None]:
    """What the metrics do when the edge is done with a request (``wiring.ON_DONE``),
    made once per app: the streams gauge and what the limits still hold, always; the
    request's count and latency when the edge returned an answer (``response``; None: it
    raised, e.g. cancelled)."""
    live = metrics.live
    # A route -> (its label, its latency histogram): the label is four properties deep
    # (match info, route, resource, canonical), resolved once per route.
    routes: dict[Any, tuple[str, _Histogram]] = {}

    def done(request: web.Request, response: web.StreamResponse | None) -> None:
        state = current()
        if state is None:  # answered by on_start (the public /metrics)
            return
        if state.streaming:
            live.streams -= 1
        # The limits' slots and unspent token reservations: on the memory backend they
        # admit through the edge's call (limits.admit_in_edge) and leave them to this one.
        # Once the answer settled its tokens only the slots are left: release_now, not
        # settle_now's frame around it.
        if state.token_keys is None:
            settled = state.slots is None or state.release_now()  # type: ignore[attr-defined]
        else:
            settled = state.settle_now()  # type: ignore[attr-defined]  # a limits.Ticket's
        if not settled:
            # A shared limiter's (its middleware settles them itself: not reached).
            task = asyncio.ensure_future(state.settle())  # type: ignore[attr-defined]
            _SETTLING.add(task)
            task.add_done_callback(_SETTLING.discard)
        if response is None:
            return
        route = request.match_info.route
        known = routes.get(route)
        if known is None:
            known = routes[route] = _route_stats(live, route)
        status = response.status
        status_text = _STATUS_TEXTS.get(status)
        if status_text is None:
            status_text = _STATUS_TEXTS[status] = str(status)
        try:
            served = request[SERVED_BY]  # not .get(): one Python frame less
        except KeyError:
            served = None
        # The model a provider served (its own id, from its list or the routing table),
        # never the name the client sent: that is whatever the client typed (any name a
        # glob of the table matches, or a failed request's), and would grow the label
        # set without bound; one series per client-made name.
        if served is not None and served[0]:
            labels = (known[0], request.method, status_text, served[0], served[1])
        else:
            labels = (known[0], request.method, status_text, "", "")
        requests = live.requests
        requests[labels] = requests.get(labels, 0) + 1  # Metrics.count, inlined
        seconds, histogram = perf_counter() - state.started, known[1]
        histogram.counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1  # observe, inlined
        histogram.total += seconds
        if state.limited is not None:
            metrics.inc(metrics.rate_limited, state.limited)

    return done


def _route_stats(live: _Live, route: Any) -> tuple[str, _Histogram]:
    info = route.resource
    label = info.canonical if info is not None else "unmatched"
    histogram = live.latency.get(label)
    if histogram is None:
        histogram = live.latency[label] = _Histogram()
    return label, histogram
