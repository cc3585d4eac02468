"""Shared state and scale-out: a conversation turn with embedded vs Redis state, one
instance vs two behind the shipped nginx.conf (``bench/run.py --only scale``).

A turn is a chat request with a ``conversation_id``: the gateway loads the stored history
and the provider's state, answers through the fake upstream, and stores the turn before
the end of the answer. Each connection holds conversations of ``TURNS`` turns, then
starts a new one, so histories stay short and every request does the same store work
(load history, load state, save state, save history).

Rows (each against the same fake upstream):
- ``embedded``: one gateway, SQLite in its data folder;
- ``redis``: one gateway, ``--state-url`` on a local redis-server;
- ``redis, nginx, 1 instance``: the same behind nginx (what nginx itself costs);
- ``redis, nginx, 2 instances``: two gateways behind nginx (scale-out).

Everything shares this machine's cores with the load generator, the fake upstream, Redis
and nginx: the numbers show the per-turn cost of each state backend and that two
instances share state correctly under load, not how far more machines would scale.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import loadgen

ROOT = Path(__file__).resolve().parent.parent
TURNS = 4  # turns per conversation before a connection starts a new one
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def turn_body(conversation: str, turn: int) -> bytes:
    return json.dumps(
        {
            "model": "openai",
            "messages": [{"role": "user", "content": f"Turn {turn}: say twenty words."}],
            "conversation_id": conversation,
        },
        separators=(",", ":"),
    ).encode()


async def _turns(port: int, headers: dict[str, str], conns: int, seconds: float) -> dict:
    """``conns`` keep-alive connections, each running conversations back to back."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal errors
        client = loadgen.Connection("127.0.0.1", port)
        conversation = 0
        try:
            while time.perf_counter() < deadline:
                conversation += 1
                cid = f"bench-{os.getpid()}-{n}-{conversation}-{time.monotonic_ns()}"
                for turn in range(1, TURNS + 1):
                    raw = loadgen.build_request(
                        "127.0.0.1", port, "/v1/chat/completions", turn_body(cid, turn), headers
                    )
                    started = time.perf_counter()
                    try:
                        timing = await client.request(raw)
                    except (OSError, asyncio.IncompleteReadError):
                        # nginx closes a keep-alive connection after 1000 requests
                        # (keepalive_requests): once on a fresh one, then it is an error.
                        await client.close()
                        started = time.perf_counter()
                        try:
                            timing = await client.request(raw)
                        except (OSError, asyncio.IncompleteReadError):
                            errors += 1
                            break
                    if timing.status != 200 or b'"content"' not in timing.body:
                        errors += 1
                    else:
                        latencies.append(time.perf_counter() - started)
                    if time.perf_counter() >= deadline:
                        return
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(conns)))
    wall = time.perf_counter() - started
    lat = sorted(latencies) or [0.0]
    return {
        "rps": len(latencies) / wall,
        "p50_ms": loadgen.percentile(lat, 50) * 1000,
        "p99_ms": loadgen.percentile(lat, 99) * 1000,
        "errors": errors,
        "turns": len(latencies),
    }


class Redis:
    def __init__(self, folder: Path, port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        argv += ["--save", "", "--appendonly", "no", "--logfile", str(folder / "redis.log")]
        self.popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            if _ping(port):
                return
            time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(10)


def _ping(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Nginx:
    """The shipped deploy/nginx.conf with this run's addresses substituted."""

    def __init__(self, folder: Path, port: int, upstreams: list[int]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        text = (ROOT / "deploy" / "nginx.conf").read_text()
        names = ["gateway-a:1337", "gateway-b:1337"]
        servers = [f"server 127.0.0.1:{p}" for p in upstreams]
        if len(servers) == 1:  # one instance: the second upstream line goes
            lines = [line for line in text.splitlines() if names[1] not in line]
            text = "\n".join(lines) + "\n"
        for name, server in zip(names, servers, strict=False):
            text = text.replace(f"server {name}", server)
        text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
        conf = folder / "nginx.conf"
        conf.write_text(text)
        options = f"daemon off; pid {folder}/nginx.pid; error_log {folder}/error.log;"
        if os.geteuid() == 0:
            options += " user root;"
        argv = [NGINX, "-p", str(folder), "-c", str(conf), "-g", options]
        self.popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(10)


def run_scale(bench: Any, args: Any, workdir: Path, headers: dict[str, str]) -> dict[str, Any]:
    """``bench`` is run.py's ``Bench`` (the fake upstream, gateways by PID)."""
    from run import free_port, verify

    bench.start_upstream()
    redis = Redis(workdir / "redis", free_port())
    fronts: list[Nginx] = []
    try:
        state = {"G4F_STATE_URL": f"redis://127.0.0.1:{redis.port}/0"}
        embedded_port, a_port, b_port = free_port(), free_port(), free_port()
        embedded, _ = bench.start_gateway(
            embedded_port, name="gw-embedded", extra_env={"G4F_DATA_DIR": str(workdir / "e")}
        )
        gw_a, _ = bench.start_gateway(a_port, name="gw-a", extra_env=state)
        gw_b, _ = bench.start_gateway(b_port, name="gw-b", extra_env=state)
        one_port, two_port = free_port(), free_port()
        fronts.append(Nginx(workdir / "nginx-1", one_port, [a_port]))
        fronts.append(Nginx(workdir / "nginx-2", two_port, [a_port, b_port]))
        targets = {
            "embedded": (embedded_port, [embedded]),
            "redis": (a_port, [gw_a]),
            "redis, nginx, 1 instance": (one_port, [gw_a]),
            "redis, nginx, 2 instances": (two_port, [gw_a, gw_b]),
        }
        for name, (port, _) in targets.items():
            _wait(port)
            verify(port, name)
        raw: dict[str, list[dict[str, Any]]] = {}
        for round_no in range(args.rounds):
            order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
            for conns in args.conns:
                for name in order:
                    port, procs = targets[name]
                    if round_no == 0 and args.warmup > 0:
                        asyncio.run(_turns(port, headers, conns, args.warmup))
                    cpu0 = sum(p.usage()[0] for p in procs)
                    row = asyncio.run(_turns(port, headers, conns, args.duration))
                    row["gateway_cpu_pct"] = (
                        100 * (sum(p.usage()[0] for p in procs) - cpu0) / args.duration
                    )
                    raw.setdefault(f"{name}|{conns}", []).append(row)
                    print(
                        f"[{round_no + 1}/{args.rounds}] c{conns:<3} {name:<26} "
                        f"{row['rps']:>7,.0f} turns/s  p50 {row['p50_ms']:6.2f} ms  "
                        f"p99 {row['p99_ms']:7.2f} ms  gateways' cpu "
                        f"{row['gateway_cpu_pct']:4.0f}%  errors {row['errors']}",
                        flush=True,
                    )
        return {
            key: {
                field: statistics.median(r[field] for r in rows)
                for field in ("rps", "p50_ms", "p99_ms", "gateway_cpu_pct")
            }
            | {"errors": sum(r["errors"] for r in rows), "rounds": len(rows)}
            for key, rows in raw.items()
        }
    finally:
        for front in fronts:
            front.stop()
        bench.stop_all()
        redis.stop()


def _wait(port: int) -> None:
    import http.client

    for _ in range(500):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing answers on :{port}")


def render_scale(results: dict[str, Any]) -> list[str]:
    lines = [
        "| state, front | connections | turns/s | p50 ms | p99 ms | gateways' CPU | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, row in results.items():
        name, conns = key.split("|")
        lines.append(
            f"| {name} | {conns} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['gateway_cpu_pct']:.0f}% | {row['errors']} |"
        )
    return lines
