"""CPU instructions per request, gateway against the relay, counted by valgrind (callgrind).

    .venv/bin/python bench/instructions.py              # ~4 min; needs valgrind
    .venv/bin/python bench/instructions.py --requests 100 --modes json

Throughput on a shared 2-core machine moves by +-20% from one minute to the next, which
hides any change smaller than that. An instruction count does not move: the same code,
inputs and environment give the same total whatever else the machine is doing. So this
is the tool for deciding whether a hot-path change pays (run it before and after); the
req/s of ``bench/run.py`` remain the numbers the targets are stated in.

Each server starts once under callgrind with instrumentation off (start-up runs ~4x
faster and is never counted), waits a second for the gateway's post-start-up
``gc.freeze``; then, for each mode in turn, instrumentation is on, it gets warm-up
requests, its counters are zeroed, it serves ``--requests`` sequential keep-alive
requests, and the counters are dumped. The count covers everything the process executes
for those requests: the interpreter, aiohttp, uvloop, pydantic-core and orjson. It does
not see cache misses or system-call time.

The regression guard (CI: tests/e2e/test_bench_smoke.py) compares a short run with the
committed baseline and fails when a mode grew by more than its tolerance:

    .venv/bin/python bench/instructions.py --check bench/instructions-baseline.json
    # refresh it after a change that is meant to cost more (or, better, less):
    .venv/bin/python bench/instructions.py --write-baseline bench/instructions-baseline.json

Both take the modes, servers and request counts from the file (``--write-baseline`` from
the command line: ``--requests 30 --warmup 20 --modes json,stream --servers gateway`` by
default), so the comparison is always like with like.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import controls
import guard
import run
import upstreams

# mode -> (stream?, model). "stream" arrives in as many reads as the timing allows (the
# count moves by ~1-2% between runs); "paced" in one read per chunk (the fake upstream
# waits --pace-ms between them), the same every run.
MODES = {"json": (False, "openai"), "stream": (True, "openai"), "paced": (True, "openai-paced")}
# The protocol scenarios (run.PROTOCOLS; the gateway only): --modes responses,stored-json
PROTOCOL_MODES = tuple(name for name in run.PROTOCOLS if name != "chat")
# A stop sequence the answer never contains: the kernel's cut (stops.py) scans every
# chunk and holds back a tail, the most it can cost: --modes stop-json,stop-stream
STOP = {"stop": ["<|never|>", "\n\nUser:"]}
STOP_MODES = ("stop-json", "stop-stream")
# Messages answered as one body (run.PROTOCOLS has only its stream), beside chat-json.
MESSAGES_JSON = json.dumps({**json.loads(run.messages_body()), "stream": False}).encode()
# The gateways that can be counted besides the relay: as bench/run.py starts them, without a
# key ("plain"), and with a named key, per-key limits and metrics ("controls",
# bench/controls.py).
SERVER_ENV = {
    "gateway": dict,
    "plain": lambda: {"G4F_API_KEY": ""},
    "controls": lambda: controls.controls_env(),
    # The controls one at a time, to split "controls" by control.
    "key": lambda: controls.controls_env(limits=False, metrics=False),
    "key-metrics": lambda: controls.controls_env(limits=False),
    "key-limits": lambda: controls.controls_env(metrics=False),
    "stopcut": lambda: {"G4F_API_KEY": ""},
}
# Served by the openai_compat plugin instead (bench/upstreams.py: --upstreams vllm on the
# same fake upstream), to compare with "gateway" (the Pollinations plugin).
COMPAT = "compat"


def _requests(port: int, count: int, mode: str) -> None:
    conn = http.client.HTTPConnection(run.HOST, port, timeout=120)
    headers = run.HEADERS
    if mode in PROTOCOL_MODES:
        path, body = run.PROTOCOLS[mode][:2]
    elif mode == "messages-json":
        path, body = "/v1/messages", MESSAGES_JSON
    elif mode in STOP_MODES:
        stream = mode == "stop-stream"
        path, body = run.CHAT_PATH, json.dumps({**json.loads(run.chat_body(stream)), **STOP})
        body = body.encode()
    else:
        stream, model = MODES[mode]
        path, body = run.CHAT_PATH, run.chat_body(stream, model)
    try:
        for _ in range(count):
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status != 200 or b"tok19" not in answer:
                raise RuntimeError(f"bad answer {resp.status}: {answer[:200]!r}")
    finally:
        conn.close()


def _control(pid: int, command: str) -> None:
    subprocess.run(["callgrind_control", command, str(pid)], check=True, capture_output=True)


def count(
    bench: run.Bench, name: str, modes: list[str], requests: int, warmup: int
) -> dict[str, int]:
    """Instructions the server ``name`` executed for ``requests`` chat requests of each
    mode (one server process for all the modes: its start-up under valgrind is most of
    the time a count takes)."""
    port = run.free_port()
    out = bench.workdir / f"callgrind.{name}"
    # Uninstrumented until the first mode: start-up is not counted, so it need not be
    # simulated either.
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    valgrind.append(f"--callgrind-out-file={out}.%p")
    if name == "relay":
        argv = [bench.python, str(run.BENCH / "relay.py"), "--port", str(port)]
        argv += ["--upstream", bench.upstream_url]
        proc = bench.start(name, valgrind + argv)
        run.wait_ready(proc, port, "/health", limit=300)
    else:
        plugin = "pollinations"
        if name == COMPAT:
            env = bench.gateway_env() | upstreams.openai_compat_env(bench.upstream_url)
            plugin = "openai_compat"
        else:
            env = bench.gateway_env() | SERVER_ENV[name]()
        argv = [bench.python, "-m", "g4f_server"]
        if name == "stopcut":  # plain, with the kernel cutting stop (bench/patched_gateway.py)
            argv = [bench.python, str(run.BENCH / "patched_gateway.py")]
            env["G4F_BENCH_PATCHES"] = "kernel-stop"
        argv += ["api", "--host", run.HOST, "--port", str(port), "--load-plugins", plugin]
        proc = bench.start(name, valgrind + argv, env)
        run.wait_ready(proc, port, "/v1/models", limit=300)
    totals: dict[str, int] = {}
    try:
        time.sleep(2.0)  # the gateway's gc.freeze runs 1 s after start-up
        _control(proc.pid, "--instr=on")
        for mode in modes:
            _requests(port, warmup, mode)
            _control(proc.pid, "-z")
            _requests(port, requests, mode)
            _control(proc.pid, "-d")
            totals[mode] = _last_dump_total(out, proc, len(totals) + 1)
    finally:
        bench.stop(proc)
    return totals


def _last_dump_total(out: Path, proc: run.Proc, number: int) -> int:
    """The total of the ``number``th dump of ``proc`` (callgrind numbers them .1, .2...)."""
    dump = out.parent / f"{out.name}.{proc.pid}.{number}"
    if not dump.exists():
        raise RuntimeError(f"no callgrind dump {dump.name}; see {proc.log}")
    match = re.search(r"^summary:\s+(\d+)", dump.read_text(errors="replace"), re.M)
    if not match:
        raise RuntimeError(f"no summary line in {dump}")
    return int(match.group(1))


BASELINE_DEFAULTS = {"requests": 30, "warmup": 20, "modes": "json,stream", "servers": "gateway"}
TOLERANCE = 0.10  # a mode may grow this much over the baseline before --check fails


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, help="counted requests per run (200)")
    parser.add_argument("--warmup", type=int, help="requests before the count (50)")
    parser.add_argument(
        "--modes",
        help="json, stream, paced, stop-json, stop-stream, messages-json or a run.PROTOCOLS name",
    )
    parser.add_argument(
        "--servers",
        help="relay, gateway, plain, controls, key, key-metrics, key-limits, compat"
        " (default: relay,gateway)",
    )
    parser.add_argument("--upstream-procs", type=int, default=1)
    parser.add_argument("--pace-ms", type=float, default=20.0, help="chunk gap for paced")
    parser.add_argument("--json", dest="json_out", help="also write the numbers here")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="copy the callgrind dumps here (read them with callgrind_annotate --inclusive=yes)",
    )
    guard.add_arguments(parser, "a count")
    args = parser.parse_args(argv)
    defaults = {"requests": 200, "warmup": 50, "modes": "json,stream", "servers": "relay,gateway"}
    baseline = guard.run_settings(args, defaults, BASELINE_DEFAULTS)
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install -y valgrind")
    run.compile_bytecode(sys.executable)
    workdir = Path(tempfile.mkdtemp(prefix="g4f-instr-"))
    bench = run.Bench(args, workdir)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results: dict[str, dict[str, float]] = {mode: {} for mode in modes}
    try:
        bench.start_upstream()
        for name in filter(None, (s.strip() for s in args.servers.split(","))):
            totals = count(bench, name, modes, args.requests, args.warmup)
            for mode, total in totals.items():
                results[mode][name] = total / args.requests
                print(
                    f"{mode:<7} {name:<8} {results[mode][name]:>12,.0f} instructions/request",
                    flush=True,
                )
    finally:
        bench.stop_all()
        if args.keep:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for dump in workdir.glob("callgrind.*"):
                shutil.copy2(dump, keep / dump.name)
        shutil.rmtree(workdir, ignore_errors=True)
    if any("relay" in row for row in results.values()):
        print()
        print("| chat request | relay instructions | gateway instructions | gateway / relay |")
        print("| --- | ---: | ---: | ---: |")
        for mode, row in results.items():
            if {"relay", "gateway"} <= row.keys():
                ratio = row["gateway"] / row["relay"]
                print(f"| {mode} | {row['relay']:,.0f} | {row['gateway']:,.0f} | {ratio:.2f} |")
    if any({"plain", "controls"} <= row.keys() for row in results.values()):
        print()
        print("| chat request | plain | key + limits + metrics | extra | controls / plain |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for mode, row in results.items():
            if {"plain", "controls"} <= row.keys():
                extra = row["controls"] - row["plain"]
                ratio = row["controls"] / row["plain"]
                cells = f"{row['plain']:,.0f} | {row['controls']:,.0f} | {extra:,.0f}"
                print(f"| {mode} | {cells} | {ratio:.3f} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    if args.write_baseline:
        Path(args.write_baseline).write_text(json.dumps(_baseline(args, results), indent=2) + "\n")
        print(f"baseline written to {args.write_baseline}")
    if baseline is not None:
        return _check(baseline, results)
    return 0


def _baseline(args: argparse.Namespace, results: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "about": "bench/instructions.py --check: instructions per request may grow at most "
        "`tolerance` over these; refresh with --write-baseline (see its docstring)",
        "python": platform.python_version(),
        "requests": args.requests,
        "warmup": args.warmup,
        "modes": args.modes,
        "servers": args.servers,
        "tolerance": TOLERANCE,
        "counts": {mode: {k: round(v) for k, v in row.items()} for mode, row in results.items()},
    }


def _check(baseline: dict[str, Any], results: dict[str, dict[str, float]]) -> int:
    """0 when every count is within the tolerance of its baseline, else 1 (and why)."""
    before = {
        f"{mode}/{name}": n for mode, row in baseline["counts"].items() for name, n in row.items()
    }
    now = {f"{mode}/{name}": n for mode, row in results.items() for name, n in row.items()}
    return guard.check(
        before,
        now,
        float(baseline.get("tolerance", TOLERANCE)),
        baseline.get("python"),
        "instructions per request",
        "Find the cost (--keep DIR, callgrind_annotate), or if it is meant, refresh the "
        "baseline with --write-baseline.",
    )


if __name__ == "__main__":
    sys.exit(main())
