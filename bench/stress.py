"""Hostile-but-fair load on one gateway: does ``/health`` stay fast and memory bounded?

    .venv/bin/python bench/stress.py                   # every scenario (~2 min)
    .venv/bin/python bench/stress.py messages parts    # some of them

Each scenario starts its own ``g4f-server api`` (Pollinations pointed at
``bench/fake_upstream.py``) on 127.0.0.1, sends the hostile request(s) while a probe asks
``GET /health`` every 10 ms on its own connection, and prints the answer statuses, how long
they took, the probe's p50/p99/max and the gateway's peak RSS (``VmHWM``). The processes are
ended by PID. Every loop here is bounded (fixed counts and deadlines); traffic stays on
127.0.0.1. Targets (issue 17): /health p99 under 250 ms while the worst request is in flight;
peak RSS under the in-flight budget plus the idle footprint.

Scenarios (the first five are the issue's reproductions):
- ``messages``: 600,000 one-word messages with a ``conversation_id`` (19.5 MiB)
- ``parts``: one message with 600,000 content parts
- ``multipart``: 50,000 empty file parts to /v1/upload_cookies
- ``memory``: 8 concurrent 30 MiB chat bodies
- ``slowloris``: 300 connections that announce a 1 MB body, send 10 bytes and go silent
- ``allowed``: the worst request the default limits allow (2,048 messages, 30 MiB) with a
  ``conversation_id``, 4 at once
- ``idle`` (issue 28 item 2): 1,000 connections from one address that send nothing and 200
  from another that send one header line every 10 s; then 1,000 silent ones spread over
  four more addresses, enough to fill ``max_connections``. A new client (its own address)
  asks ``/v1/models`` and ``/health/live`` every 0.5 s on fresh connections: how many got
  in, and how soon the server was open again
- ``gzip`` (issue 28 item 7): 199 KiB gzip bombs (~200 MiB of zeros once inflated), 12 one
  after the other then 4 at once; each must be a 413 while ``/health`` stays fast
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import GATEWAY_KEY, HOST, Proc, free_port, wait_ready  # process helpers

BENCH = Path(__file__).resolve().parent
KEY = GATEWAY_KEY  # what run.wait_ready presents
MIB = 1024 * 1024


def chat(messages: list[dict], **extra: object) -> bytes:
    return json.dumps({"model": "openai", "messages": messages, **extra}).encode()


def multipart(parts: int) -> tuple[bytes, str]:
    boundary = "stressboundary"
    one = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="c.json"'
        "\r\nContent-Type: application/json\r\n\r\n\r\n"
    ).encode()
    return one * parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def request(
    port: int, method: str, path: str, body: bytes = b"", ctype: str = "application/json"
) -> tuple[int, float]:
    """One request on a fresh connection: (status, seconds); status 0 if the connection
    failed or nothing came back within 400 s."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return 0, time.perf_counter() - started
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    try:
        writer.write(head.encode() + body)
        line = await asyncio.wait_for(reader.readline(), 400)
        await asyncio.wait_for(reader.read(), 60)
        status = int(line.split()[1]) if line else 0
    except (OSError, TimeoutError, ValueError, IndexError):
        status = 0
    finally:
        writer.close()
    return status, time.perf_counter() - started


async def probe(port: int, stop: asyncio.Event, samples: list[float]) -> None:
    """GET /health every 10 ms on one keep-alive connection until ``stop`` (at most 60,000
    probes); each sample is the latency in seconds (a failure counts as 5 s)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    for _ in range(60_000):
        if stop.is_set():
            break
        started = time.perf_counter()
        try:
            writer.write(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
            length = next(
                int(h.split(b":")[1])
                for h in head.split(b"\r\n")
                if h.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            samples.append(time.perf_counter() - started)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, StopIteration):
            samples.append(5.0)
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, port)
        await asyncio.sleep(0.01)
    writer.close()


async def slowloris(port: int, count: int, hold: float) -> tuple[str, float]:
    """``count`` connections send headers announcing 1 MB and 10 bytes, then wait up to
    ``hold`` s. Reports how many the server answered (and how), and how many it kept open."""
    conns = []
    refused = 0
    for _ in range(count):
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            refused += 1
            continue
        writer.write(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {KEY}"
            "\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n".encode()
            + b'{"model":'
        )
        conns.append((reader, writer))
    started = time.perf_counter()
    fresh = await request(port, "GET", "/health")  # a new client while they hang on

    async def outcome(reader: asyncio.StreamReader) -> str:
        try:
            line = await asyncio.wait_for(
                reader.readline(), max(0.1, hold - (time.perf_counter() - started))
            )
        except (TimeoutError, OSError):
            return "open"
        return line.split()[1].decode() if line.startswith(b"HTTP/") else "closed"

    results = await asyncio.gather(*(outcome(r) for r, _ in conns))
    for _, writer in conns:
        writer.close()
    counts: dict[str, int] = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    return (
        f"{summary}; refused: {refused}; a new /health meanwhile: {fresh[0]} in {fresh[1]:.2f} s",
        fresh[1],
    )


async def _hold(source: str, port: int, dribble: float | None) -> tuple[Any, Any] | None:
    """A connection from ``source`` that sends nothing (``dribble`` None) or a header line
    every ``dribble`` s (by ``_dribble``); None when it could not connect."""
    try:
        return await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    except OSError:
        return None


async def _dribble(writer: asyncio.StreamWriter, every: float, until: float) -> None:
    writer.write(f"GET /v1/models HTTP/1.1\r\nHost: {HOST}\r\n".encode())
    n = 0
    while time.perf_counter() < until:
        await asyncio.sleep(every)
        n += 1
        try:
            writer.write(f"X-Slow-{n}: 1\r\n".encode())
            await writer.drain()
        except OSError:
            return


async def _status(source: str, port: int, path: str) -> int:
    """One GET from ``source`` on a fresh connection: its status, 0 without one."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    except OSError:
        return 0
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {KEY}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        line = await asyncio.wait_for(reader.readline(), 5)
        return int(line.split()[1]) if line else 0
    except (OSError, TimeoutError, ValueError, IndexError):
        return 0
    finally:
        writer.close()


async def _closed(reader: asyncio.StreamReader, until: float) -> float | None:
    """When (perf_counter) the server closed this connection, None if not by ``until``."""
    try:
        await asyncio.wait_for(reader.read(), max(0.01, until - time.perf_counter()))
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.perf_counter()


async def idle_connections(port: int, hold: float = 25.0) -> str:
    started = time.perf_counter()
    until = started + hold
    silent = [await _hold("127.0.0.2", port, None) for _ in range(1000)]
    slow = [await _hold("127.0.0.3", port, 10.0) for _ in range(200)]
    dribblers = [asyncio.create_task(_dribble(c[1], 10.0, until)) for c in slow if c]
    first = [await _status("127.0.0.9", port, "/v1/models") for _ in range(3)]
    spread = [await _hold(f"127.0.0.{4 + i // 250}", port, None) for i in range(1000)]
    held = [c for c in silent + slow + spread if c]
    closings = [asyncio.create_task(_closed(r, until)) for r, _ in held]
    models: list[tuple[float, int]] = []
    live: list[int] = []
    while time.perf_counter() < until:
        models.append(
            (time.perf_counter() - started, await _status("127.0.0.9", port, "/v1/models"))
        )
        live.append(await _status("127.0.0.9", port, "/health/live"))
        await asyncio.sleep(0.5)
    closed_at = [t - started for t in await asyncio.gather(*closings) if t is not None]
    for task in dribblers:
        task.cancel()
    for _, writer in held:
        writer.close()
    refused = [t for t, s in models if s != 200]
    ok_again = next(
        (t for t, s in models if s == 200 and t > (refused[-1] if refused else 0)), None
    )
    return (
        f"opened {len(held)} of 2,200 (1,000 silent + 200 dribbling from 2 addresses, then 1,000 "
        f"silent from 4 more); a new client's /v1/models while only the first 1,200 were "
        f"open: {first}; after the cap filled: {len(refused)} of {len(models)} not 200, the "
        f"last at {refused[-1] if refused else 0:.1f} s, 200 again from "
        f"{ok_again if ok_again is not None else float('nan'):.1f} s; /health/live: "
        f"{live.count(200)} of {len(live)} 200; idle connections closed by the server: "
        f"{len(closed_at)} of {len(held)}" + (f", by {max(closed_at):.1f} s" if closed_at else "")
    )


def gzip_bomb(size: int = 199 * 1024) -> bytes:
    """About ``size`` bytes of gzip that inflate to a thousand times as many zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block, out = bytes(MIB), []
    while sum(map(len, out)) < size:
        out.append(packer.compress(block))
        out.append(packer.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(out) + packer.flush()


async def gzip_bombs(port: int) -> str:
    bomb = gzip_bomb()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {KEY}"
        "\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(bomb)}\r\nConnection: close\r\n\r\n"
    ).encode()

    async def one() -> tuple[int, float]:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(head + bomb)
            line = await asyncio.wait_for(reader.readline(), 60)
            return (int(line.split()[1]) if line else 0), time.perf_counter() - started
        except (OSError, TimeoutError, ValueError, IndexError):
            return 0, time.perf_counter() - started
        finally:
            writer.close()

    results = [await one() for _ in range(12)]
    results += await asyncio.gather(*(one() for _ in range(4)))
    statuses = sorted({s for s, _ in results})
    return (
        f"16 x {len(bomb) / 1024:.0f} KiB gzip bombs -> {statuses}, "
        f"slowest {max(t for _, t in results):.2f} s"
    )


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def start_gateway(workdir: Path, upstream: str, extra_env: dict[str, str]) -> tuple[Proc, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        POLLINATIONS_TEXT_URL=upstream, POLLINATIONS_IMAGE_URL=upstream,
        POLLINATIONS_GEN_URL=upstream, POLLINATIONS_AUDIO_URL=upstream,
        POLLINATIONS_API_KEY="stress-upstream-key", COPILOT_URL=upstream,
        G4F_API_KEY=KEY, G4F_ACCESS_LOG="false", XDG_DATA_HOME=str(workdir / "data"),
        NO_PROXY="127.0.0.1", **extra_env,
    )  # fmt: skip
    gateway = str(Path(sys.executable).parent / "g4f-server")
    argv = [gateway, "api", "--host", HOST, "--port", str(port), "--load-plugins", "pollinations"]
    proc = Proc("gateway", argv, env, workdir / "gateway.log")
    wait_ready(proc, port, "/v1/models")
    return proc, port


async def measure(port: int, load: Callable[[], Awaitable[str]]) -> tuple[str, list[float]]:
    samples: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(port, stop, samples))
    await asyncio.sleep(0.3)  # a few idle samples first
    outcome = await load()
    stop.set()
    await prober
    return outcome, samples


def scenarios(port: int) -> dict[str, Callable[[], Awaitable[str]]]:
    word = {"role": "user", "content": "hi"}

    async def one(
        body: bytes, path: str = "/v1/chat/completions", ctype: str = "application/json"
    ) -> str:
        status, took = await request(port, "POST", path, body, ctype)
        return f"{len(body) / MIB:.1f} MiB -> {status} in {took:.2f} s"

    async def many(bodies: list[bytes]) -> str:
        results = await asyncio.gather(
            *(request(port, "POST", "/v1/chat/completions", b) for b in bodies)
        )
        statuses = sorted({s for s, _ in results})
        slowest = max(t for _, t in results)
        return (
            f"{len(bodies)} x {len(bodies[0]) / MIB:.1f} MiB -> {statuses}, slowest {slowest:.2f} s"
        )

    def big_messages(count: int, total: int) -> list[dict]:
        size = total // count - 40
        return [{"role": "user", "content": "x" * size} for _ in range(count)]

    return {
        "messages": lambda: one(chat([word] * 600_000, conversation_id="x")),
        "parts": lambda: one(
            chat([{"role": "user", "content": [{"type": "text", "text": "a"}] * 600_000}])
        ),
        "multipart": lambda: one(*_upload(50_000)),
        "memory": lambda: many([chat(big_messages(1, 30 * MIB))] * 8),
        "slowloris": lambda: _slow(port),
        "allowed": lambda: many([chat(big_messages(2048, 30 * MIB), conversation_id="y")] * 4),
        "idle": lambda: idle_connections(port),
        "gzip": lambda: gzip_bombs(port),
    }


def _upload(parts: int) -> tuple[bytes, str, str]:
    body, ctype = multipart(parts)
    return body, "/v1/upload_cookies", ctype


async def _slow(port: int) -> str:
    summary, _ = await slowloris(port, 300, 15)
    return summary


def report(name: str, outcome: str, samples: list[float], rss: int, idle_rss: int) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name:10} {outcome}\n{'':10} /health n={len(samples)} "
        f"p50={statistics.median(samples) * 1000:.1f} ms "
        f"p99={p99 * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms; peak RSS {rss / MIB:.0f} MiB "
        f"(idle {idle_rss / MIB:.0f} MiB)",
        flush=True,
    )


async def run_one(name: str, workdir: Path, upstream: str, env: dict[str, str]) -> None:
    gateway, port = start_gateway(workdir, upstream, env)
    try:
        await request(
            port, "POST", "/v1/chat/completions", chat([{"role": "user", "content": "warm"}])
        )
        idle = peak_rss(gateway.pid)
        outcome, samples = await measure(port, scenarios(port)[name])
        report(name, outcome, samples, peak_rss(gateway.pid), idle)
    finally:
        gateway.stop()


def main() -> None:
    names = list(scenarios(0))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", nargs="*", help=f"some of: {', '.join(names)}")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment for the gateway, e.g. G4F_BODY_TIMEOUT=5",
    )  # fmt: skip
    args = parser.parse_args()
    if unknown := set(args.scenario) - set(names):
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="g4f-stress-") as tmp:
        workdir = Path(tmp)
        up_port = free_port()
        argv = [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(up_port)]
        upstream = Proc("upstream", argv, dict(os.environ), workdir / "upstream.log")
        try:
            wait_ready(upstream, up_port, "/health")
            for name in args.scenario or names:
                asyncio.run(run_one(name, workdir, f"http://{HOST}:{up_port}", env))
        finally:
            upstream.stop()


if __name__ == "__main__":
    main()
