"""The operator's controls on the hot path (``bench/run.py --only controls``).

Two gateways against the same fake upstream, measured in interleaved pairs:

- ``plain``: no API key, no limits, no metrics;
- ``controls``: the full path: a named key (``[keys]``, looked up by its SHA-256), rate
  limits per key (rpm, tpm and concurrency, set high enough never to refuse), metrics on,
  cache off.

Target (issue 13): ``controls`` keeps at least 90% of ``plain``'s req/s, per-pair median.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import Any

import run

NAMED_KEY = run.GATEWAY_KEY  # the key the load generator already sends
TARGET = 0.90


def controls_env(limits: bool = True, metrics: bool = True) -> dict[str, str]:
    """The named key, with its limits and the metrics unless told not to."""
    digest = hashlib.sha256(NAMED_KEY.encode()).hexdigest()
    huge = {"rpm": 10**9, "tpm": 10**12, "concurrency": 10**6} if limits else {}
    return {
        "G4F_API_KEY": "",  # only the named key
        "G4F_KEYS": json.dumps({"bench": {"sha256": digest, **huge}}),
        "G4F_LIMITS": json.dumps({"per_key": huge}),
        "G4F_METRICS": "true" if metrics else "false",
    }


def run_controls(bench: Any, args: Any, workdir: Path) -> dict[str, Any]:
    kind = args.loadgen if args.loadgen != "auto" else ("wrk" if run.wrk_version() else "python")
    load = run.Load(kind, args.wrk_threads, workdir)
    bench.start_upstream()
    plain_port, controls_port = run.free_port(), run.free_port()
    plain, _ = bench.start_gateway(plain_port, name="plain", extra_env={"G4F_API_KEY": ""})
    controlled, _ = bench.start_gateway(controls_port, name="controls", extra_env=controls_env())
    servers = {"plain": (plain, plain_port), "controls": (controlled, controls_port)}
    for name, (_, port) in servers.items():
        run.verify(port, name)
    scenarios = [(stream, conns) for stream in (False, True) for conns in args.conns]
    rows: dict[str, dict[str, list[float]]] = {}
    try:
        for stream, conns in scenarios:  # warm-up
            for proc, port in servers.values():
                load.run(port, stream, conns, args.warmup)
                run.settle(proc)
        for number in range(args.rounds):
            for stream, conns in scenarios:
                label = f"{'stream' if stream else 'json'}/c{conns}"
                order = list(servers) if number % 2 == 0 else list(reversed(servers))
                got: dict[str, float] = {}
                for name in order:
                    proc, port = servers[name]
                    run.settle(proc)
                    got[name] = load.run(port, stream, conns, args.duration)["rps"]
                row = rows.setdefault(label, {"plain": [], "controls": [], "ratio": []})
                row["plain"].append(got["plain"])
                row["controls"].append(got["controls"])
                row["ratio"].append(got["controls"] / got["plain"] if got["plain"] else 0.0)
    finally:
        bench.stop_all()
    return {
        label: {key: statistics.median(values) for key, values in row.items()}
        for label, row in rows.items()
    }


def render_controls(results: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | plain req/s | key + limits + metrics req/s | ratio (per-pair median) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, row in results.items():
        lines.append(
            f"| {label} | {row['plain']:.0f} | {row['controls']:.0f} | {row['ratio']:.3f} |"
        )
    worst = min((row["ratio"] for row in results.values()), default=0.0)
    verdict = "met" if worst >= TARGET else "NOT met"
    lines.append("")
    lines.append(f"- controls keep >= {TARGET:.0%} of plain req/s: worst {worst:.3f} — {verdict}")
    return lines
