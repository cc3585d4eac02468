"""Where a chat request's CPU goes in the gateway, grouped by concern (cProfile, self time).

    .venv/bin/python bench/breakdown.py                      # json and stream, 2,000 each
    .venv/bin/python bench/breakdown.py --modes stream --server controls --top 25

The gateway runs against the fake upstream in a wrapper (``--profiled``) that starts a
cProfile profiler on SIGUSR1 and writes its stats on SIGUSR2, so start-up and warm-up are
not counted. Requests are sequential on one keep-alive connection. Each function's self
time is put in one group (the module it lives in decides; built-ins by name), and the
table gives microseconds per request and the share of the whole.

cProfile slows Python-level calls more than C code (its hook runs per call), so the
shares lean towards code with many small calls; read the table for where to look, and
``bench/instructions.py`` (valgrind, no such bias) for whether a change paid.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (group, substrings of a function's file path or built-in name), first match wins.
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("plugin: upstream reading and event shaping", ("g4f_server_",)),
    ("web: edge middleware, admission, body reading", ("g4f_server/web/",)),
    ("controls: key, limits, metrics", ("g4f_server/controls/",)),
    ("protocols: rendering, framing, routes", ("g4f_server/protocols/",)),
    ("pipeline: turn, dispatch, transcript", ("g4f_server/pipeline/",)),
    ("providers: routing, context, health", ("g4f_server/providers/",)),
    ("logging: access line", ("g4f_server/logs.py", "structlog", "/logging/")),
    ("storage", ("g4f_server/storage/",)),
    ("contract: requests, events, upstream helpers", ("g4f_server/",)),
    ("pydantic: validation", ("pydantic", "validate_python", "validate_json")),
    ("json: orjson", ("orjson",)),
    ("aiohttp client: the upstream request", ("aiohttp/client", "aiohttp/connector")),
    ("aiohttp server: HTTP parse, response write", ("aiohttp/", "multidict", "yarl")),
    ("event loop: asyncio, uvloop, sockets", ("asyncio", "uvloop", "socket", "selectors")),
]
OTHER = "other: built-ins and the standard library"


def group_of(filename: str, name: str) -> str:
    where = f"{filename} {name}"
    for group, needles in GROUPS:
        if any(needle in where for needle in needles):
            return group
    return OTHER


def profiled_gateway() -> None:
    """The wrapper: ``g4f-server`` with the profiler switched by signals."""
    # CPU time, not wall time: on a shared machine a preempted send would count as its own cost.
    profiler = cProfile.Profile(time.process_time)
    out = os.environ["G4F_BREAKDOWN_STATS"]

    def start(*_: object) -> None:
        profiler.enable()

    def stop(*_: object) -> None:
        profiler.disable()
        profiler.dump_stats(out + ".tmp")
        os.replace(out + ".tmp", out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    from g4f_server.cli import main

    sys.argv = ["g4f-server", *sys.argv[2:]]
    main()


def breakdown(stats_file: Path, requests: int) -> list[tuple[str, float]]:
    stats = pstats.Stats(str(stats_file))
    totals: dict[str, float] = {}
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        self_time = row[2]
        group = group_of(filename, name)
        totals[group] = totals.get(group, 0.0) + self_time
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    return [(group, seconds / requests * 1e6) for group, seconds in rows]


def top_functions(stats_file: Path, requests: int, top: int) -> list[tuple[str, float]]:
    stats = pstats.Stats(str(stats_file))
    rows = []
    for (filename, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        short = filename.split("site-packages/")[-1].split("core/")[-1]
        rows.append((f"{short}:{line} {name}", row[2] / requests * 1e6))
    return sorted(rows, key=lambda kv: -kv[1])[:top]


def main(argv: list[str] | None = None) -> int:
    import controls
    import instructions
    import run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--server", choices=("plain", "controls"), default="plain")
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest functions")
    parser.add_argument("--upstream-procs", type=int, default=1)
    parser.add_argument("--pace-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="g4f-breakdown-"))
    bench = run.Bench(args, workdir)
    try:
        bench.start_upstream()
        for mode in filter(None, (m.strip() for m in args.modes.split(","))):
            stats_file = workdir / f"{mode}.prof"
            env = bench.gateway_env() | {"G4F_BREAKDOWN_STATS": str(stats_file)}
            env |= controls.controls_env() if args.server == "controls" else {"G4F_API_KEY": ""}
            port = run.free_port()
            argv = [bench.python, str(Path(__file__).resolve()), "--profiled", "api"]
            argv += ["--host", run.HOST, "--port", str(port), "--load-plugins", "pollinations"]
            proc = bench.start(f"gateway-{mode}", argv, env)
            try:
                run.wait_ready(proc, port, "/v1/models")
                instructions._requests(port, args.warmup, mode)
                time.sleep(1.5)  # the gateway's gc.freeze runs 1 s after start-up
                os.kill(proc.pid, signal.SIGUSR1)
                time.sleep(0.2)
                instructions._requests(port, args.requests, mode)
                os.kill(proc.pid, signal.SIGUSR2)
                for _ in range(100):
                    if stats_file.exists():
                        break
                    time.sleep(0.1)
            finally:
                bench.stop(proc)
            rows = breakdown(stats_file, args.requests)
            whole = sum(us for _, us in rows)
            print(f"\n{mode} ({args.server}), {args.requests} requests, cProfile self time")
            print("| group | us/request | share |")
            print("| --- | ---: | ---: |")
            for group, us in rows:
                print(f"| {group} | {us:.1f} | {us / whole:.0%} |")
            print(f"| all | {whole:.1f} | |")
            for name, us in top_functions(stats_file, args.requests, args.top):
                print(f"  {us:7.1f} us  {name}")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--profiled"]:
        profiled_gateway()
    else:
        sys.exit(main())
