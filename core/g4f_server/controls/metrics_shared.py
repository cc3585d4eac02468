"""``/metrics`` with ``--workers N``: every worker's numbers in every scrape.

Each scrape reaches one worker (the kernel hands the connection to any of them), so a
worker alone would answer with its own counts: 7, 3, 7, 3, which Prometheus reads as
resets. As prometheus-client's multiprocess mode does, each worker writes its numbers to
a folder the supervisor made (``<pid>.json``), and the worker that is scraped adds them
all up. Unlike that mode, the hot path keeps its plain counts (metrics.py says why): a
worker writes its file once a second, and the scraped one writes its own first, so the
others' numbers are at most a second old; each file only grows, so every sum does too.

A worker that died keeps its file (renamed ``<pid>.dead.json`` by the supervisor): its
counts stay in the sums, so they never go down; its gauges (streams, memory, open
files) leave them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from g4f_server import periodic
from g4f_server.controls.metrics import METRICS, Metrics, _Histogram, _Live

FLUSH_SECONDS = 1.0
_DEAD = ".dead.json"


def retire(folder: Path, pid: int) -> None:
    """The supervisor's note that worker ``pid`` died: keep its counts, drop its gauges."""
    with contextlib.suppress(FileNotFoundError):
        (folder / f"{pid}.json").rename(folder / f"{pid}{_DEAD}")


def share(app: web.Application, folder: Path) -> None:
    """Make this worker's ``/metrics`` the sum of every worker's (call before start)."""
    metrics = app[METRICS]
    shared = _Shared(metrics, folder)
    metrics.render_body = shared.render  # type: ignore[method-assign]

    async def flushing(app: web.Application) -> AsyncIterator[None]:
        async def flush() -> None:
            shared.write()

        async with periodic.every(FLUSH_SECONDS, flush):
            yield

    app.cleanup_ctx.append(flushing)


def _counter_values(counter: Counter) -> dict[str, float]:
    return {
        sample.labels[next(iter(sample.labels))]: sample.value
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


class _Shared:
    def __init__(self, metrics: Metrics, folder: Path) -> None:
        self.metrics, self.folder = metrics, folder
        self.path = folder / f"{os.getpid()}.json"
        self.process = ProcessCollector(registry=None)

    def snapshot(self) -> dict[str, Any]:
        live, metrics = self.metrics.live, self.metrics
        process = {
            sample.name: sample.value
            for family in self.process.collect()
            for sample in family.samples
        }
        return {
            "requests": [[*labels, count] for labels, count in live.requests.items()],
            "latency": {k: [h.counts, h.total] for k, h in live.latency.items()},
            "first_token": {k: [h.counts, h.total] for k, h in live.first_token.items()},
            "tokens": live.tokens,
            "streams": live.streams,
            "rate_limited": _counter_values(metrics.rate_limited),
            "cache": _counter_values(metrics.cache),
            "failures": [list(f) for f in metrics.failure_counts()],
            "process": process,
        }

    def write(self) -> None:
        # Whole or not at all: a scrape in another worker never reads half a file.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.path)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        self.write()
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_Sum(self.folder))
        return generate_latest(registry)


class _Sum(Collector):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _snapshots(self) -> Iterator[tuple[bool, dict[str, Any]]]:
        for path in sorted(self.folder.glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                yield not path.name.endswith(_DEAD), json.loads(path.read_text())

    def collect(self) -> Iterator[Metric]:
        live = _Live()
        rate_limited: dict[str, float] = {}
        cache: dict[str, float] = {}
        failures: dict[tuple[str, str], float] = {}
        cpu = rss = vms = fds = 0.0
        start: float | None = None
        workers = 0
        for alive, snap in self._snapshots():
            for *labels, count in snap["requests"]:
                key = tuple(labels)
                live.requests[key] = live.requests.get(key, 0) + count  # type: ignore[index]
            for mine, theirs in ((live.latency, snap["latency"]), (live.first_token,
                                 snap["first_token"])):  # fmt: skip
                for label, (counts, total) in theirs.items():
                    histogram = mine.setdefault(label, _Histogram())
                    pairs = zip(histogram.counts, counts, strict=True)
                    histogram.counts = [a + b for a, b in pairs]
                    histogram.total += total
            for provider, (prompt, completion) in snap["tokens"].items():
                sums = live.tokens.setdefault(provider, [0, 0])
                sums[0] += prompt
                sums[1] += completion
            for mine, theirs in ((rate_limited, snap["rate_limited"]), (cache, snap["cache"])):
                for label, count in theirs.items():
                    mine[label] = mine.get(label, 0) + count
            for provider, code, count in snap["failures"]:
                failures[(provider, code)] = failures.get((provider, code), 0) + count
            process = snap["process"]
            cpu += process.get("process_cpu_seconds_total", 0.0)
            if "process_start_time_seconds" in process:
                started = process["process_start_time_seconds"]
                start = started if start is None else min(start, started)
            if alive:
                workers += 1
                live.streams += snap["streams"]
                rss += process.get("process_resident_memory_bytes", 0.0)
                vms += process.get("process_virtual_memory_bytes", 0.0)
                fds += process.get("process_open_fds", 0.0)
        yield from live.collect()
        yield _counters("g4f_rate_limited", "Requests refused by a rate limit", "kind",
                        rate_limited)  # fmt: skip
        yield _counters("g4f_cache", "Response cache lookups by result", "result", cache)
        family = CounterMetricFamily(
            "g4f_provider_failures", "Provider failures by error code", labels=("provider", "code")
        )
        for labels, count in failures.items():
            family.add_metric(labels, count)
        yield family
        yield GaugeMetricFamily("g4f_workers", "Worker processes serving", value=workers)
        # The standard process metrics, for the whole server: CPU of every worker that
        # ever ran (a counter), memory and open files of those running now.
        yield CounterMetricFamily(
            "process_cpu_seconds", "Total user and system CPU time spent in seconds.", value=cpu
        )
        yield GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory size in bytes.", value=rss
        )
        yield GaugeMetricFamily(
            "process_virtual_memory_bytes", "Virtual memory size in bytes.", value=vms
        )
        yield GaugeMetricFamily("process_open_fds", "Number of open file descriptors.", value=fds)
        if start is not None:
            yield GaugeMetricFamily(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                value=start,
            )


def _counters(name: str, documentation: str, label: str, values: dict[str, float]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=(label,))
    for value, count in values.items():
        family.add_metric((value,), count)
    return family
