"""What the garbage collector does per request under load, per protocol and connection count.

    .venv/bin/python bench/gc_stats.py                          # the kernel's threshold
    .venv/bin/python bench/gc_stats.py --patches gc-700         # CPython's default (700)

The gateway runs through bench/patched_gateway.py with its ``gc-stats`` patch, which
times every collection; wrk (or loadgen.py) loads each scenario in turn, and the table
gives collections per 1,000 requests for each generation and the collector's time per
request. Instruction counts cannot show this: sequential requests are never collected,
and what a collection costs grows with the requests in flight.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run


def _totals(path: Path) -> dict[str, Any]:
    time.sleep(0.5)  # the patch rewrites the file every 0.2 s
    return json.loads(path.read_text())


def measure(
    bench: run.Bench, load: run.Load, proc: run.Proc, port: int, stats: Path, scenario: str
) -> dict[str, Any]:
    """One scenario (``chat/c32``, ``responses-json/c1``...): its req/s and, per 1,000
    requests, each generation's collections; the collector's microseconds per request."""
    name, conns = scenario.rsplit("/c", 1)
    load.run(port, False, int(conns), bench.args.warmup, name)  # warm, outside the count
    before = _totals(stats)
    result = load.run(port, False, int(conns), bench.args.duration, name)
    after = _totals(stats)
    requests = max(result["rps"] * bench.args.duration, 1.0)
    per_thousand = [
        1000 * (b - a) / requests
        for a, b in zip(before["collections"], after["collections"], strict=True)
    ]
    seconds = sum(after["seconds"]) - sum(before["seconds"])
    return {
        "rps": result["rps"],
        "errors": result["errors"],
        "collections_per_1000": per_thousand,
        "collector_us_per_request": 1e6 * seconds / requests,
        "threshold": after["threshold"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="chat/c1,chat/c32,responses/c32,chat-json/c32")
    parser.add_argument("--patches", default="", help="more bench/patched_gateway.py patches")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--upstream-procs", type=int, default=1)
    parser.add_argument("--pace-ms", type=float, default=2.0)
    args = parser.parse_args(argv)
    for scenario in args.scenarios.split(","):
        if scenario.rsplit("/c", 1)[0] not in run.PROTOCOLS:
            parser.error(f"unknown scenario {scenario!r}: a run.PROTOCOLS name, /c, connections")
    workdir = Path(tempfile.mkdtemp(prefix="g4f-gc-"))
    bench = run.Bench(args, workdir)
    load = run.Load("wrk" if run.wrk_version() else "python", 2, workdir)
    stats = workdir / "gc.json"
    rows: dict[str, dict[str, Any]] = {}
    try:
        bench.start_upstream()
        port = run.free_port()
        patches = ",".join(filter(None, ["gc-stats", args.patches]))
        extra = {"G4F_BENCH_GC_STATS": str(stats)}
        proc, _ = bench.start_gateway(port, patches=patches, extra_env=extra)
        time.sleep(1.5)  # the gateway's gc.freeze (and threshold) come 1 s after start-up
        for scenario in args.scenarios.split(","):
            rows[scenario] = measure(bench, load, proc, port, stats, scenario)
    finally:
        bench.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    threshold = next(iter(rows.values()))["threshold"]
    print(f"collector thresholds {threshold}; per 1,000 requests, by generation")
    print("| scenario | req/s | young | middle | full | collector us/request |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for scenario, row in rows.items():
        young, middle, full = row["collections_per_1000"]
        print(
            f"| {scenario} | {row['rps']:,.0f} | {young:.1f} | {middle:.1f} | {full:.2f} "
            f"| {row['collector_us_per_request']:.1f} |"
        )
    return 1 if any(row["errors"] for row in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
