"""A/B of gateway variants beside the relay, round-robin in one run (noise hits all alike).

    .venv/bin/python bench/ab.py --variants "log=;nolog=@G4F_ACCESS_LOG=false"
    .venv/bin/python bench/ab.py --variants "base=;mine=mypatch"   # after adding mypatch

A scenario is ``json/cN``, ``stream/cN`` or a run.PROTOCOLS name (``responses/c32``).
A variant is ``name=patch,patch`` (patches of bench/patched_gateway.py; empty = plain
g4f-server run through the same wrapper) optionally followed by ``@VAR=value`` settings.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

# What the table gives per request, each a measure() percentage of a core.
_PER_REQUEST = ("cpu_pct", "user_pct", "system_pct", "load_cpu_pct", "upstream_cpu_pct")


def parse_variants(text: str) -> list[tuple[str, str, dict[str, str]]]:
    out = []
    for item in filter(None, (v.strip() for v in text.split(";"))):
        name, _, rest = item.partition("=")
        patches, *settings = rest.split("@")
        env = dict(s.split("=", 1) for s in settings if "=" in s)
        out.append((name.strip(), patches.strip(), env))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="log=;nolog=@G4F_ACCESS_LOG=false")
    parser.add_argument("--scenarios", default="json/c32,stream/c32,json/c1,stream/c1")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--upstream-procs", type=int, default=2)
    parser.add_argument("--pace-ms", type=float, default=2.0)
    args = parser.parse_args()
    wrk = run.wrk_version()
    workdir = Path(tempfile.mkdtemp(prefix="g4f-ab-"))
    bench = run.Bench(args, workdir)
    load = run.Load("wrk" if wrk else "python", 1, workdir)
    variants = parse_variants(args.variants)
    rows: dict[tuple[str, str], list[dict]] = {}
    try:
        upstream = bench.start_upstream()
        targets: dict[str, tuple[run.Proc, int]] = {}
        port = run.free_port()
        targets["relay"] = (bench.start_relay(port), port)
        for name, patches, env in variants:
            port = run.free_port()
            proc, _ = bench.start_gateway(port, patches=patches, extra_env=env, name=name)
            run.verify(port, name)
            targets[name] = (proc, port)
        del upstream
        for rnd in range(args.rounds):
            for scenario in args.scenarios.split(","):
                mode, conns = scenario.split("/c")
                protocol = mode if mode in run.PROTOCOLS else None
                for name, (proc, port) in targets.items():
                    if protocol is not None and name == "relay":
                        continue  # the relay speaks chat completions only
                    row = run.measure(
                        bench, load, proc, port, mode == "stream", int(conns), protocol=protocol
                    )
                    rows.setdefault((scenario, name), []).append(row)
                    print(
                        f"[{rnd + 1}] {scenario:<10} {name:<10} {row['rps']:>8,.0f} req/s "
                        f"p50 {row['p50_ms']:6.2f} ms cpu {row['cpu_pct']:3.0f}% "
                        f"errors {row['errors']}",
                        flush=True,
                    )
    finally:
        bench.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    # CPU per request (the server's CPU over its requests) is steadier than req/s on a
    # shared machine: req/s moves with whatever else runs, a request's CPU much less.
    # Split: the server's user and system time, and what the load generator and the fake
    # upstream spent on each of its requests (on a 2-core machine they share its cores).
    print(
        "| scenario | variant | req/s | / relay | p50 ms | p50 - relay ms | CPU us/req "
        "| user | system | load generator | upstream |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scenario in args.scenarios.split(","):
        relay = rows.get((scenario, "relay"))  # none for a protocol's scenario
        r_rps = statistics.median(r["rps"] for r in relay) if relay else None
        r_p50 = statistics.median(r["p50_ms"] for r in relay) if relay else None
        for name in targets:
            got = rows.get((scenario, name))
            if got is None:
                continue
            rps = statistics.median(r["rps"] for r in got)
            p50 = statistics.median(r["p50_ms"] for r in got)
            per = {
                key: statistics.median(1e4 * r[key] / max(r["rps"], 1e-9) for r in got)
                for key in _PER_REQUEST
            }
            to_relay = f"{rps / r_rps:.2f}" if r_rps else "-"
            above = f"{p50 - r_p50:+.2f}" if r_p50 is not None else "-"
            print(
                f"| {scenario} | {name} | {rps:,.0f} | {to_relay} | {p50:.2f} "
                f"| {above} | {per['cpu_pct']:.0f} | {per['user_pct']:.0f} "
                f"| {per['system_pct']:.0f} | {per['load_cpu_pct']:.0f} "
                f"| {per['upstream_cpu_pct']:.0f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
