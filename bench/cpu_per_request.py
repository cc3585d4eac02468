"""CPU time per request, gateway against the relay: what instruction counts do not show.

    .venv/bin/python bench/cpu_per_request.py                       # ~2 min
    .venv/bin/python bench/cpu_per_request.py --before ../other-checkout --rounds 7

``bench/instructions.py`` counts what a request executes; it cannot see what each
instruction costs. This script measures the cost: each server (the relay, the gateway,
and with ``--before`` another checkout's gateway) answers ``--requests`` sequential
keep-alive chat requests, and the server process's user and system CPU time over them
(``/proc/PID/stat``) is divided by the count. Servers take turns within a round and the
order rotates between rounds; the table gives medians over the rounds, and each ratio
is the median of the per-round ratios (against the relay of the same round). With
``--instructions FILE`` (``bench/instructions.py --json FILE`` of the same servers and
modes) it also prints nanoseconds per instruction.

Sequential requests from one client are the cheapest way to see a request's own CPU:
there is no queueing, and the number is the same at any load a 2-core machine can give
it as long as the machine is otherwise quiet (other work evicts the caches the request
runs from; run it with nothing else busy).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def cpu_us(pid: int) -> tuple[float, float]:
    """User and system CPU microseconds ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) * TICK_US, int(fields[12]) * TICK_US


def per_request(port: int, pid: int, body: bytes, count: int) -> tuple[float, float]:
    """User and system microseconds of ``pid`` per request over ``count`` requests."""
    conn = http.client.HTTPConnection(run.HOST, port, timeout=60)
    try:
        conn.request("POST", run.CHAT_PATH, body, run.HEADERS)  # connected, warm
        conn.getresponse().read()
        user0, sys0 = cpu_us(pid)
        for _ in range(count):
            conn.request("POST", run.CHAT_PATH, body, run.HEADERS)
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status != 200 or b"tok19" not in answer:
                raise RuntimeError(f"bad answer from :{port}: {resp.status} {answer[:200]!r}")
        user1, sys1 = cpu_us(pid)
    finally:
        conn.close()
    return (user1 - user0) / count, (sys1 - sys0) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per server, mode and round")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--before", type=Path, help="another checkout (with its own .venv)")
    parser.add_argument("--instructions", type=Path, help="bench/instructions.py --json output")
    parser.add_argument("--upstream-procs", type=int, default=1)
    parser.add_argument("--pace-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    bodies = {mode: run.chat_body(mode == "stream") for mode in modes}

    with tempfile.TemporaryDirectory(prefix="g4f-cpu-") as tmp:
        bench = run.Bench(args, Path(tmp))
        try:
            bench.start_upstream()
            servers: dict[str, tuple[int, int]] = {}
            port = run.free_port()
            servers["relay"] = (port, bench.start_relay(port).popen.pid)
            port = run.free_port()
            servers["gateway"] = (port, bench.start_gateway(port)[0].popen.pid)
            if args.before:
                port = run.free_port()
                proc, _ = bench.start_gateway(port, name="before", tree=args.before.resolve())
                servers["before"] = (port, proc.popen.pid)
            names = list(servers)
            for mode in modes:  # warm-up, not counted
                for port, pid in servers.values():
                    per_request(port, pid, bodies[mode], args.warmup)
            samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for round_no in range(args.rounds):
                order = names[round_no % len(names) :] + names[: round_no % len(names)]
                for mode in modes:
                    for name in order:
                        port, pid = servers[name]
                        got = per_request(port, pid, bodies[mode], args.requests)
                        samples.setdefault((name, mode), []).append(got)
                print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            bench.stop_all()

    counts = json.loads(args.instructions.read_text()) if args.instructions else {}
    print(f"CPU per request, {args.requests} sequential requests x {args.rounds} rounds (medians)")
    print()
    header = "| mode | server | user us | sys us | user+sys us | / relay |"
    if counts:
        header += " instructions | ns / instruction |"
    print(header)
    print("| --- | --- |" + " ---: |" * (header.count("|") - 3))
    for mode in modes:
        relay = [u + s for u, s in samples[("relay", mode)]]
        for name in names:
            got = samples[(name, mode)]
            user = statistics.median(u for u, _ in got)
            system = statistics.median(s for _, s in got)
            total = [u + s for u, s in got]
            ratio = statistics.median(t / r for t, r in zip(total, relay, strict=True))
            line = f"| {mode} | {name} | {user:.0f} | {system:.0f} | {statistics.median(total):.0f}"
            line += f" | {ratio:.2f} |"
            count = counts.get(mode, {}).get(name) if counts else None
            if counts:
                per = f"{user * 1000 / count:.2f}" if count else "-"
                line += f" {f'{count:,.0f}' if count else '-'} | {per} |"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
