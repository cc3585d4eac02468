"""``GET /metrics`` in Prometheus' text format (prometheus-client), off unless ``--metrics``.

One registry per app (tests run many apps in one process). What is counted on the hot
path is done in the outermost middleware, once per request: requests by route, method,
status, provider and public model, and the latency histogram. Provider failures are not
counted here at all: the registry's entries keep them (``health.py``) and a collector
reads them at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from g4f_server.keys import PUBLIC_MODEL, RATE_LIMITED, REGISTRY, SERVED_BY

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STARTED = web.RequestKey("metrics_started", float)
_STREAMING = web.RequestKey("metrics_streaming", bool)


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


class Metrics:
    def __init__(self, app: web.Application, public: bool) -> None:
        self.public = public
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "g4f_requests",
            "Requests by route, method, status, provider and public model",
            ("route", "method", "status", "provider", "model"),
            registry=registry,
        )
        self.latency = Histogram(
            "g4f_request_duration_seconds",
            "Time to the whole answer, by route",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_token = Histogram(
            "g4f_time_to_first_token_seconds",
            "Time from the request to the provider's first part of the answer",
            ("provider",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "g4f_tokens", "Tokens by provider and kind", ("provider", "kind"), registry=registry
        )
        self.streams = Gauge(
            "g4f_streams_in_progress", "Streamed answers being sent", registry=registry
        )
        self.rate_limited = Counter(
            "g4f_rate_limited", "Requests refused by a rate limit", ("kind",), registry=registry
        )
        self.cache = Counter(
            "g4f_cache", "Response cache lookups by result", ("result",), registry=registry
        )
        registry.register(_ProviderFailures(app))
        self._by_labels: dict[tuple[str, ...], Any] = {}

    def render(self) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    def count(self, labels: tuple[str, str, str, str, str], seconds: float) -> None:
        # The labelled children are cached: ``labels()`` takes a lock and builds a key.
        child = self._by_labels.get(labels)
        if child is None:
            child = self._by_labels[labels] = (
                self.requests.labels(*labels),
                self.latency.labels(labels[0]),
            )
        child[0].inc()
        child[1].observe(seconds)


METRICS = web.AppKey("metrics", Metrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    metrics = request.app[METRICS]
    if metrics.public and request.path == "/metrics":
        return metrics.render()
    started = request[_STARTED] = time.perf_counter()
    try:
        response = await handler(request)
    finally:
        if request.get(_STREAMING):
            metrics.streams.dec()
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    provider, _model, _ = request.get(SERVED_BY, ("", "", 0))
    # The public name only once a provider served it: names from failed requests are
    # whatever the client typed, and would grow the label set without bound.
    model = request.get(PUBLIC_MODEL, "") if provider else ""
    labels = (route, request.method, str(response.status), provider or "", model)
    metrics.count(labels, time.perf_counter() - started)
    limited = request.get(RATE_LIMITED)
    if limited is not None:
        metrics.rate_limited.labels(limited).inc()
    return response


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """A streamed answer starts: counted until its request ends."""
    if response.content_type == "text/event-stream" and not request.get(_STREAMING):
        request[_STREAMING] = True
        request.app[METRICS].streams.inc()


def first_token(request: web.Request, provider: str) -> None:
    metrics = request.app.get(METRICS)
    started = request.get(_STARTED)
    if metrics is not None and started is not None:
        metrics.first_token.labels(provider).observe(time.perf_counter() - started)


def tokens(request: web.Request, provider: str, prompt: int, completion: int) -> None:
    metrics = request.app[METRICS]
    metrics.tokens.labels(provider, "prompt").inc(prompt)
    metrics.tokens.labels(provider, "completion").inc(completion)
