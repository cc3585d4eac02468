"""g4f-server benchmark: the gateway beside a bare aiohttp relay and the fake upstream alone.

    .venv/bin/python bench/run.py                 # full run (~7 min), rewrites docs/performance.md
    .venv/bin/python bench/run.py --rounds 5      # quicker, noisier
    .venv/bin/python bench/run.py --smoke         # ~1 s per measurement, proves the harness works

Everything runs on 127.0.0.1 as child processes started (and ended) by PID:
- ``bench/fake_upstream.py``: Pollinations' OpenAI-compatible chat endpoint and model lists;
- ``bench/relay.py``: the 60-line byte relay (the yardstick);
- ``g4f-server api --load-plugins pollinations``, with Pollinations pointed at the fake
  upstream through its environment variables, an API key required, access logging on.

Load comes from wrk (``apt-get install wrk``) with a Lua script for the POST body, or, when
wrk is missing or ``--loadgen python`` is given, from ``bench/loadgen.py``. Streamed time to
first byte/token is always measured with ``bench/loadgen.py`` (1 connection, many samples).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HOST = "127.0.0.1"
CHAT_PATH = "/v1/chat/completions"
GATEWAY_KEY = "bench-gateway-key"
START_MARK = "<!-- bench:results:start -->"
END_MARK = "<!-- bench:results:end -->"
TARGETS = ("upstream", "relay", "gateway")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def chat_body(stream: bool, model: str = "openai") -> bytes:
    return json.dumps(
        {
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Say twenty words."},
            ],
            "stream": stream,
        },
        separators=(",", ":"),
    ).encode()


HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {GATEWAY_KEY}"}


def responses_body(store: bool = False, stream: bool = True) -> bytes:
    body = {
        "model": "openai",
        "instructions": "You are a helpful assistant.",
        "input": "Say twenty words.",
        "stream": stream,
        "store": store,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def messages_body() -> bytes:
    body = {
        "model": "openai",
        "max_tokens": 1024,
        "system": "You are a helpful assistant.",
        "messages": [{"role": "user", "content": "Say twenty words."}],
        "stream": True,
    }
    return json.dumps(body, separators=(",", ":")).encode()


# The protocol scenarios (gateway only: the relay speaks no protocol): the same answer as
# chat completions, as Responses and as Anthropic Messages events, streamed, and the
# Responses ones also as one body. "responses" keeps nothing, like chat completions
# without a conversation_id (store: false, as Codex CLI sends); "stored" is the API's
# default (store: true: one stored response per answer).
# name -> (path, body, a marker, how often it is in the answer, a part every answer has)
PROTOCOLS = {
    "chat": (CHAT_PATH, chat_body(True), b'"content":"tok', 20, b"data: [DONE]"),
    "responses": ("/v1/responses", responses_body(), b'"delta":"tok', 20, b"response.completed"),
    "stored": ("/v1/responses", responses_body(True), b'"delta":"tok', 20, b"response.completed"),
    "messages": ("/v1/messages", messages_body(), b'"text":"tok', 20, b"event: message_stop"),
    "chat-json": (CHAT_PATH, chat_body(False), b"tok19", 1, b'"chat.completion"'),
    "responses-json": (
        "/v1/responses",
        responses_body(stream=False),
        b"tok19",
        2,
        b'"status":"completed"',
    ),
    "stored-json": (
        "/v1/responses",
        responses_body(True, False),
        b"tok19",
        2,
        b'"status":"completed"',
    ),
}


def embeddings_body(encoding_format: str, inputs: int = 8) -> bytes:
    """A RAG indexing call: a batch of short texts, as openai-python sends it."""
    texts = [f"Passage {i}: the quick brown fox jumps over the lazy dog." for i in range(inputs)]
    body = {"model": "text-embedding-3-small", "input": texts, "encoding_format": encoding_format}
    return json.dumps(body, separators=(",", ":")).encode()


# Requests measured outside the protocol groups (bench/upstreams.py): name -> (path, body).
REQUESTS = {
    "embeddings": ("/v1/embeddings", embeddings_body("base64")),
    "embeddings-float": ("/v1/embeddings", embeddings_body("float")),
}

# Each group's scenarios run back to back in a round, as ratios to the group's first.
# The 10% target holds for the scenarios that do chat completions' work in another
# grammar. A stored response also makes a durable write per answer, which chat
# completions never does: its rows are shown, with the store's own cost (the ratio to
# the same request with store: false, run beside it), and are not held to the target
# (docs/performance.md, "What a stored response costs").
STORED_LIKE = {"stored": "responses", "stored-json": "responses-json"}
PROTOCOL_GROUPS = {
    "stream": ("chat", "responses", "stored", "messages"),
    "json": ("chat-json", "responses-json", "stored-json"),
}


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 256:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                kids = [int(p) for p in task.read_text().split()]
                out += kids
                todo += kids
    return out


def _proc_stat(pid: int) -> tuple[float, float, int]:
    """(user CPU seconds, system CPU seconds, RSS bytes) of one process; zeros when it is
    gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK, rss
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0, 0


class Proc:
    """A child process, its descendants found through /proc, ended by PID."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.started = time.perf_counter()
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self.popen.pid

    def pids(self) -> list[int]:
        return [self.pid, *_descendants(self.pid)]

    def usage(self) -> tuple[float, int]:
        """CPU seconds and RSS bytes summed over the process and its descendants."""
        user, system, rss = self.times()
        return user + system, rss

    def times(self) -> tuple[float, float, int]:
        """User and system CPU seconds and RSS bytes, summed over the process and its
        descendants (one reading of each)."""
        user = system = 0.0
        rss = 0
        for pid in self.pids():
            u, s, r = _proc_stat(pid)
            user, system, rss = user + u, system + s, rss + r
        return user, system, rss

    def stop(self) -> None:
        family = self.pids()
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        for pid in family[1:]:  # workers the parent did not take down
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def http_get(port: int, path: str, timeout: float = 1.0) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {GATEWAY_KEY}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def wait_ready(proc: Proc, port: int, path: str, limit: float = 30.0) -> float:
    """Seconds from process start to the first 200 on ``path``."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early; see {proc.log}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, path) == 200:
                return time.perf_counter() - proc.started
        time.sleep(0.005)
    raise RuntimeError(f"{proc.name} not ready on :{port}{path} within {limit}s; see {proc.log}")


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.python = sys.executable
        self.gateway_bin = str(Path(sys.executable).parent / "g4f-server")
        self.procs: list[Proc] = []
        self.env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
        self.env["NO_PROXY"] = self.env["no_proxy"] = "127.0.0.1,localhost"
        self.upstream_port = free_port()
        self.upstream_url = f"http://{HOST}:{self.upstream_port}"
        self.upstream: Proc | None = None

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, env or self.env, self.workdir / f"{name}.log")
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)

    def start_upstream(self) -> Proc:
        argv = [self.python, str(BENCH / "fake_upstream.py"), "--port", str(self.upstream_port)]
        argv += ["--procs", str(self.args.upstream_procs), "--pace-ms", str(self.args.pace_ms)]
        proc = self.upstream = self.start("upstream", argv)
        wait_ready(proc, self.upstream_port, "/health")
        return proc

    def start_relay(self, port: int) -> Proc:
        argv = [self.python, str(BENCH / "relay.py"), "--port", str(port)]
        proc = self.start("relay", [*argv, "--upstream", self.upstream_url])
        wait_ready(proc, port, "/health")
        return proc

    def gateway_env(self) -> dict[str, str]:
        env = dict(self.env)
        env.update(
            POLLINATIONS_TEXT_URL=self.upstream_url,
            POLLINATIONS_IMAGE_URL=self.upstream_url,
            POLLINATIONS_GEN_URL=self.upstream_url,
            POLLINATIONS_AUDIO_URL=self.upstream_url,
            # A key sends chat to the gateway host's /v1/chat/completions (no anonymous
            # one-at-a-time queue); the fake upstream accepts any key.
            POLLINATIONS_API_KEY="bench-upstream-key",
            COPILOT_URL=self.upstream_url,  # never leave 127.0.0.1, even by accident
            G4F_API_KEY=GATEWAY_KEY,
            G4F_ACCESS_LOG="true",
            XDG_DATA_HOME=str(self.workdir / "data"),
        )
        return env

    def start_gateway(
        self,
        port: int,
        *,
        plugins: str | None = "pollinations",
        workers: int = 1,
        name: str = "",
        patches: str | None = None,
        extra_env: dict[str, str] | None = None,
        tree: Path | None = None,
    ) -> tuple[Proc, float]:
        """``patches``: run through bench/patched_gateway.py with these experiments;
        ``tree``: another checkout's gateway, from its own ``.venv`` (``--before``)."""
        env = self.gateway_env() | (extra_env or {})
        cmd = [str(tree / ".venv" / "bin" / "g4f-server") if tree else self.gateway_bin]
        if patches is not None:
            cmd = [self.python, str(BENCH / "patched_gateway.py")]
            env["G4F_BENCH_PATCHES"] = patches
        argv = [*cmd, "api", "--host", HOST, "--port", str(port)]
        if plugins:
            argv += ["--load-plugins", plugins]
        if workers > 1:
            argv += ["--workers", str(workers)]
        proc = self.start(name or "gateway", argv, env)
        ready = wait_ready(proc, port, "/v1/models")
        return proc, ready


# --------------------------------------------------------------------------- load


def wrk_version() -> str | None:
    path = shutil.which("wrk")
    if not path:
        return None
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk \S+", out.stdout + out.stderr)
    return match.group(0) if match else "wrk"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unparsed wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    requests = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not requests:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.MULTILINE))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "requests": int(requests.group(1)),
        "errors": errors,
        "rps": float(rps.group(1)) if rps else 0.0,
        # No distribution when nothing completed (every request timed out).
        "p50_ms": _ms(pct["50"]) if "50" in pct else float("nan"),
        "p99_ms": _ms(pct["99"]) if "99" in pct else float("nan"),
    }


def lua_script(path: Path, body: bytes) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body.decode()}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class Load:
    def __init__(self, kind: str, threads: int, workdir: Path) -> None:
        self.kind = kind
        self.threads = threads
        self.scripts: dict[bool | str, Path] = {
            stream: lua_script(workdir / f"post-{int(stream)}.lua", chat_body(stream))
            for stream in (False, True)
        }
        for name, (_, body, *_) in PROTOCOLS.items():
            self.scripts[name] = lua_script(workdir / f"post-{name}.lua", body)
        for name, (_, body) in REQUESTS.items():
            self.scripts[name] = lua_script(workdir / f"post-{name}.lua", body)

    def run(
        self, port: int, stream: bool, conns: int, seconds: float, protocol: str | None = None
    ) -> dict[str, Any]:
        if protocol in REQUESTS:
            path, body = REQUESTS[protocol]
        else:
            path, body = (PROTOCOLS[protocol][:2]) if protocol else (CHAT_PATH, chat_body(stream))
        if self.kind == "wrk":
            argv = ["wrk", "-t", str(min(self.threads, conns)), "-c", str(conns)]
            argv += ["-d", f"{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
            script = self.scripts[protocol or stream]
            argv += ["-s", str(script), f"http://{HOST}:{port}{path}"]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
            return parse_wrk(out.stdout)
        raw = loadgen.build_request(HOST, port, path, body, HEADERS)
        result = asyncio.run(loadgen.load(HOST, port, raw, conns, seconds))
        return result.summary()


def settle(proc: Proc, limit: float = 60.0) -> float:
    """Wait until ``proc`` is idle (under 10% of a core over 0.25 s); the seconds waited.

    wrk hangs up on its open requests when its time is up; a server that spends long on
    those hang-ups would otherwise charge that time to the next measurement."""
    started = time.perf_counter()
    cpu, _ = proc.usage()
    while time.perf_counter() - started < limit:
        time.sleep(0.25)
        now, _ = proc.usage()
        if now - cpu < 0.025:
            break
        cpu = now
    return time.perf_counter() - started - 0.25


def measure(
    bench: Bench,
    load: Load,
    proc: Proc,
    port: int,
    stream: bool,
    conns: int,
    warmup: bool = True,
    protocol: str | None = None,
) -> dict:
    args = bench.args
    settled = 0.0
    if warmup and args.warmup > 0:
        settled += settle(proc)
        load.run(port, stream, conns, args.warmup, protocol)
    settled += settle(proc)
    user0, system0, _ = proc.times()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], proc.usage()[1])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    upstream = bench.upstream
    up0 = upstream.usage()[0] if upstream else 0.0
    load0, busy0 = _load_cpu(), _machine_busy()
    started = time.perf_counter()
    result = load.run(port, stream, conns, args.duration, protocol)
    wall = time.perf_counter() - started
    load1, busy1 = _load_cpu(), _machine_busy()
    done.set()
    sampler.join()
    user1, system1, rss = proc.times()
    # Split into the interpreter's own work (user) and the kernel's (system: sockets,
    # wake-ups), from the same readings as the whole: which side a variant's cost is on.
    result["user_pct"] = 100 * (user1 - user0) / wall
    result["system_pct"] = 100 * (system1 - system0) / wall
    result["cpu_pct"] = result["user_pct"] + result["system_pct"]
    # What else ran on the same cores: the load generator (wrk, a reaped child; or
    # loadgen.py in this process) and the fake upstream.
    result["load_cpu_pct"] = 100 * (load1 - load0) / wall
    up1 = upstream.usage()[0] if upstream else 0.0
    result["upstream_cpu_pct"] = 100 * (up1 - up0) / wall
    # Every process on the machine (other users' too: a shared machine's load shows here).
    result["machine_cpu_pct"] = 100 * (busy1 - busy0) / wall
    result["peak_rss_mb"] = max(peak[0], rss) / 2**20
    result["settle_s"] = settled
    return result


def _load_cpu() -> float:
    """CPU seconds of this process and its reaped children (wrk runs to completion)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return (sum(fields[:8]) - idle) / CLK_TCK
    return 0.0


def verify(port: int, name: str) -> None:
    """One plain and one streamed answer through ``name``, checked for content."""

    async def check() -> None:
        conn = loadgen.Connection(HOST, port)
        try:
            plain = await conn.request(
                loadgen.build_request(HOST, port, CHAT_PATH, chat_body(False), HEADERS)
            )
            streamed = await conn.request(
                loadgen.build_request(HOST, port, CHAT_PATH, chat_body(True), HEADERS)
            )
        finally:
            await conn.close()
        if plain.status != 200 or b"tok19" not in plain.body:
            raise RuntimeError(f"{name}: bad plain answer {plain.status}: {plain.body[:300]!r}")
        tokens = streamed.body.count(b'"content":"tok')
        if streamed.status != 200 or tokens != 20 or b"data: [DONE]" not in streamed.body:
            raise RuntimeError(
                f"{name}: bad stream ({streamed.status}, {tokens} tokens): {streamed.body[:300]!r}"
            )

    asyncio.run(check())


def verify_protocols(port: int) -> None:
    """One answer per protocol scenario through the gateway, checked for its text."""

    async def check() -> None:
        conn = loadgen.Connection(HOST, port)
        try:
            for name, (path, body, marker, times, last) in PROTOCOLS.items():
                answer = await conn.request(loadgen.build_request(HOST, port, path, body, HEADERS))
                deltas = answer.body.count(marker)
                if answer.status != 200 or deltas != times or last not in answer.body:
                    raise RuntimeError(
                        f"gateway {name}: bad stream ({answer.status}, {deltas} deltas): "
                        f"{answer.body[:300]!r}"
                    )
        finally:
            await conn.close()

    asyncio.run(check())


def protocol_rounds(
    bench: Bench, load: Load, proc: Proc, port: int, rounds: int
) -> dict[str, dict[str, Any]]:
    """Each group of protocol scenarios (PROTOCOL_GROUPS) through the gateway, back to
    back in rotating order each round; each one's req/s as a ratio to the group's first
    (chat completions), per round."""
    verify_protocols(port)
    out: dict[str, dict[str, Any]] = {}
    for group, names in PROTOCOL_GROUPS.items():
        base = names[0]
        for conns in bench.args.conns:
            runs: dict[str, list[dict]] = {name: [] for name in names}
            ratios: dict[str, list[float]] = {name: [] for name in names if name != base}
            # Gateway CPU per request against chat's: what the req/s ratio would be on a
            # machine with nothing else running, and much steadier than req/s on this one.
            cpu: dict[str, list[float]] = {name: [] for name in ratios}
            store: dict[str, list[float]] = {name: [] for name in names if name in STORED_LIKE}
            for round_no in range(rounds):
                turn = round_no % len(names)
                order = names[turn:] + names[:turn]
                rows = {}
                for name in order:
                    print(f"[{round_no + 1}/{rounds}] protocol {name:<14} c{conns:<3}", end=" ")
                    rows[name] = measure(
                        bench, load, proc, port, group == "stream", conns,
                        warmup=round_no == 0, protocol=name,
                    )  # fmt: skip
                    runs[name].append(rows[name])
                    print(f"{rows[name]['rps']:>9,.0f} req/s  p50 {rows[name]['p50_ms']:6.2f} ms")
                for name in ratios:
                    ratios[name].append(rows[name]["rps"] / max(rows[base]["rps"], 1e-9))
                    cpu[name].append(_cpu_per_request(rows[name]) / _cpu_per_request(rows[base]))
                for name in store:
                    unstored = rows[STORED_LIKE[name]]["rps"]
                    store[name].append(rows[name]["rps"] / max(unstored, 1e-9))
            out[f"{group}/c{conns}"] = {
                "load": {name: _median_result(rows) for name, rows in runs.items()},
                "ratio": {name: _quartiles(values) for name, values in ratios.items()},
                "cpu_ratio": {name: _quartiles(values) for name, values in cpu.items()},
                "store_ratio": {name: _quartiles(values) for name, values in store.items()},
            }
    return out


# The --workers comparison: each protocol doing chat's work, at the most connections.
WORKER_SCENARIOS = {
    "chat-json": "chat completions, json",
    "chat": "chat completions, stream",
    "responses": "Responses (store: false), stream",
    "messages": "Anthropic Messages, stream",
}


def worker_rounds(
    bench: Bench, load: Load, single: Proc, single_port: int, workers: int
) -> dict[str, Any]:
    """One worker against ``workers`` of them, back to back in alternating order each
    round, per protocol, at the largest connection count (with one connection only one
    worker ever has work: the kernel hands a connection to one of them for its life).
    Beside req/s, the CPU of each side and of everything else on the machine (the load
    generator and the fake upstream), which is what caps the scaling on a small machine."""
    args = bench.args
    conns = max(args.conns)
    port = free_port()
    multi, _ = bench.start_gateway(port, workers=workers, name="gateway-workers")
    try:
        verify(port, "gateway --workers")
        servers = {"1": (single, single_port), str(workers): (multi, port)}
        out: dict[str, Any] = {"n": workers, "conns": conns, "cores": os.cpu_count(), "rows": {}}
        for name in WORKER_SCENARIOS:
            stream = name != "chat-json"
            runs: dict[str, list[dict]] = {label: [] for label in servers}
            ratios: list[float] = []
            for round_no in range(args.rounds):
                order = list(servers) if round_no % 2 == 0 else list(reversed(servers))
                got = {}
                for label in order:
                    proc, server_port = servers[label]
                    got[label] = measure(
                        bench, load, proc, server_port, stream, conns,
                        warmup=round_no == 0, protocol=name,
                    )  # fmt: skip
                    runs[label].append(got[label])
                ratios.append(got[str(workers)]["rps"] / max(got["1"]["rps"], 1e-9))
                print(
                    f"[{round_no + 1}/{args.rounds}] workers {name:<10} c{conns} "
                    f"1: {got['1']['rps']:>7,.0f} req/s  {workers}: "
                    f"{got[str(workers)]['rps']:>7,.0f} req/s  x{ratios[-1]:.2f}",
                    flush=True,
                )
            out["rows"][name] = {
                "load": {label: _median_result(rows) for label, rows in runs.items()},
                "scaling": _quartiles(ratios),
            }
        return out
    finally:
        bench.stop(multi)


def render_before(results: dict[str, Any]) -> list[str]:
    """The same run before the change, for comparison: both gateways against the relay
    of the same round (each round runs relay, this gateway and the earlier one)."""
    meta, load = results["meta"], results["load"]
    lines = [
        "### The same run before the change, for comparison",
        "",
        f"Before: `{meta['before']}`; after: `{meta['after']}`. Each round ran the relay, "
        "this gateway and the earlier one back to back (order reversed every other round); "
        "each ratio is taken against the relay of its own round, median (quartiles).",
        "",
        "| scenario | relay req/s | before req/s | after req/s | before / relay | after / relay "
        "| after / before |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, pair in results["pairs"].items():
        row = load[key]
        before, after = pair["before_ratio"], (pair["ratio_q1"], pair["ratio"], pair["ratio_q3"])
        lines.append(
            f"| {key} | {_f(row['relay']['rps'])} | {_f(row['before']['rps'])} "
            f"| {_f(row['gateway']['rps'])} "
            f"| {before[1]:.2f} ({before[0]:.2f}-{before[2]:.2f}) "
            f"| **{after[1]:.2f}** ({after[0]:.2f}-{after[2]:.2f}) "
            f"| {after[1] / max(before[1], 1e-9):.2f} |"
        )
    return [*lines, ""]


def render_workers(w: dict[str, Any]) -> list[str]:
    n, cores = w["n"], w["cores"]
    lines = [
        "",
        f"### `--workers {n}` (SO_REUSEPORT) against one worker, same run",
        "",
        f"c{w['conns']}, one worker and {n} back to back in alternating order each round; "
        "scaling per pair, median (quartiles). CPU is % of one core over the run: the "
        "gateway's (all its workers); the load generator's and the fake upstream's, which "
        f"share the same {cores} cores; and the rest of the machine's (other users of a "
        f"shared machine). The ceiling is the most {n} workers could do on what the others "
        f"leave them: ({cores}00% - everything but the gateway) / one worker's CPU, at most "
        f"{n}. CPU per request {n} / 1 near 1.00 says the workers themselves cost nothing "
        "extra per request: scaling below the ceiling would be the supervisor's or the "
        "kernel's balancing; scaling below the target but at the ceiling is the machine.",
        "",
        f"| protocol | 1 worker req/s | {n} workers req/s | scaling | ceiling "
        f"| gateway CPU % 1 / {n} | load generator + upstream CPU % 1 / {n} "
        f"| rest of the machine CPU % 1 / {n} | CPU per request {n} / 1 | p50 ms 1 / {n} |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | --- |",
    ]
    for name, row in w["rows"].items():
        one, many = row["load"]["1"], row["load"][str(n)]
        q = row["scaling"]
        bench = [r["load_cpu_pct"] + r["upstream_cpu_pct"] for r in (one, many)]
        rest = [
            max(0.0, r.get("machine_cpu_pct", 0.0) - r["cpu_pct"] - b)
            for r, b in zip((one, many), bench, strict=True)
        ]
        ceiling = min(n, (cores * 100 - bench[1] - rest[1]) / max(one["cpu_pct"], 1e-9))
        per_request = _cpu_per_request(many) / _cpu_per_request(one)
        lines.append(
            f"| {WORKER_SCENARIOS[name]} | {_f(one['rps'])} | {_f(many['rps'])} "
            f"| **{q[1]:.2f}** ({q[0]:.2f}-{q[2]:.2f}) | {ceiling:.2f} "
            f"| {one['cpu_pct']:.0f} / {many['cpu_pct']:.0f} "
            f"| {bench[0]:.0f} / {bench[1]:.0f} | {rest[0]:.0f} / {rest[1]:.0f} "
            f"| {per_request:.2f} | {one['p50_ms']:.2f} / {many['p50_ms']:.2f} |"
        )
    return lines


def _commit(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout.strip() or "unknown"


def _cpu_per_request(row: dict[str, Any]) -> float:
    return max(row["cpu_pct"], 1e-9) / max(row["rps"], 1e-9)


def render_protocols(protocols: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "### Protocols (gateway only, the same answer in each grammar)",
        "",
        "Per round, against chat completions' run beside it: median (quartiles).",
        "",
        "| scenario | protocol | req/s | p50 ms | req/s / chat's | CPU per request / chat's |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    labels = {
        "chat": "chat completions",
        "responses": "Responses (store: false)",
        "stored": "Responses (store: true)",
        "messages": "Anthropic Messages",
        "chat-json": "chat completions",
        "responses-json": "Responses (store: false)",
        "stored-json": "Responses (store: true)",
    }
    for key, row in protocols.items():
        load, ratio, cpu = row["load"], row["ratio"], row.get("cpu_ratio", {})
        for name in load:
            q, c = ratio.get(name), cpu.get(name)
            cell = f"**{q[1]:.2f}** ({q[0]:.2f}-{q[2]:.2f})" if q else "1"
            cpu_cell = f"{c[1]:.2f} ({c[0]:.2f}-{c[2]:.2f})" if c else ("1" if not q else "")
            lines.append(
                f"| {key} | {labels[name]} | {_f(load[name]['rps'])} "
                f"| {load[name]['p50_ms']:.2f} | {cell} | {cpu_cell} |"
            )
    return lines


def protocol_targets(
    protocols: dict[str, dict[str, Any]],
) -> list[tuple[str, str, bool | None]]:
    """The 10% target for each protocol doing chat's work; the stored scenarios' figures
    beside it, as information (None: not a target; see STORED_LIKE)."""
    out: list[tuple[str, str, bool | None]] = []
    for key, row in protocols.items():
        for name in row["ratio"]:
            ratio = row["ratio"][name][1]
            if name in STORED_LIKE:
                own = row.get("store_ratio", {}).get(name)
                cost = f"; {own[1]:.0%} of the same request's with store: false" if own else ""
                text = f"{key} {name} (store: true) against chat completions"
                out.append((text, f"{ratio:.0%}{cost}", None))
                continue
            out.append(
                (f"{key} {name} within 10% of chat completions", f"{ratio:.0%}", ratio >= 0.9)
            )
    return out


def ttfb(port: int, count: int, model: str) -> dict[str, float]:
    raw = loadgen.build_request(HOST, port, CHAT_PATH, chat_body(True, model), HEADERS)
    timings = asyncio.run(loadgen.samples(HOST, port, raw, count))
    bad = [t.status for t in timings if t.status != 200 or t.first_token is None]
    if bad:
        raise RuntimeError(f"time-to-first-byte run on :{port} failed: statuses {bad[:5]}")
    return {
        "samples": len(timings),
        "first_byte_ms": loadgen.median([t.first_byte for t in timings]) * 1000,
        "first_token_ms": loadgen.median([t.first_token or 0.0 for t in timings]) * 1000,
        "total_ms": loadgen.median([t.total for t in timings]) * 1000,
    }


# --------------------------------------------------------------------------- start-up


def import_time(python: str, module: str, runs: int) -> dict[str, float]:
    """Wall time of importing ``module`` in a fresh interpreter (minus a bare interpreter),
    and the sum of ``-X importtime`` self times."""

    def wall(code: str) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, timeout=60)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    base = wall("pass")
    full = wall(f"import {module}")
    out = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    self_us = 0
    for line in out.stderr.splitlines():
        if m := re.match(r"import time:\s+(\d+) \|", line):
            self_us += int(m.group(1))
    return {"wall_ms": (full - base) * 1000, "importtime_ms": self_us / 1000}


def cold_starts(bench: Bench, runs: int) -> dict[str, Any]:
    """Process start to first 200 on /v1/models (gateway with every plugin; the relay),
    and the RSS each holds once idle."""
    out: dict[str, list[float]] = {"gateway": [], "relay": [], "gateway_rss": [], "relay_rss": []}
    for _ in range(runs):
        port = free_port()
        proc, ready = bench.start_gateway(port, plugins=None, name="gateway-cold")
        out["gateway"].append(ready)
        time.sleep(0.5)
        out["gateway_rss"].append(proc.usage()[1] / 2**20)
        bench.stop(proc)
        port = free_port()
        relay = bench.start_relay(port)
        out["relay"].append(time.perf_counter() - relay.started)
        time.sleep(0.5)
        out["relay_rss"].append(relay.usage()[1] / 2**20)
        bench.stop(relay)
    return {k: statistics.median(v) for k, v in out.items()} | {"runs": runs}


# --------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version()}


def _f(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def _ok(flag: bool | None) -> str:
    if flag is None:
        return "not a target (a durable write per answer)"
    return "**met**" if flag else "**not met**"


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    load = results["load"]
    lines = [
        f"Measured {meta['date']} on {meta['nproc']} cores ({meta['cpu']}), Python "
        f"{meta['python']}, aiohttp {meta['aiohttp']}, event loop {meta['loop']}, load from "
        f"{meta['loadgen']}; {meta['rounds']} interleaved rounds of {meta['duration']:g} s runs "
        f"after one {meta['warmup']:g} s warm-up per server and scenario; relay and gateway "
        "back to back in alternating order, ratios taken per pair, medians reported. "
        "Sources and venv compiled to bytecode first, as `pip install` does.",
        "",
        "Command:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        "### Throughput and latency (chat completions, 20 chunks per streamed answer)",
        "",
        "| scenario | upstream alone req/s | relay req/s | gateway req/s "
        "| gateway / relay, per pair: median (quartiles) | gateway / upstream "
        "| p50 ms upstream / relay / gateway | p50 added per pair, median (quartiles) "
        "| p99 ms relay / gateway | gateway CPU % | relay CPU % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: |",
    ]
    for key, row in load.items():
        up, rel, gw = row["upstream"], row["relay"], row["gateway"]
        pair = results["pairs"][key]
        lines.append(
            f"| {key} | {_f(up['rps'])} | {_f(rel['rps'])} | {_f(gw['rps'])} "
            f"| **{pair['ratio']:.2f}** ({pair['ratio_q1']:.2f}-{pair['ratio_q3']:.2f}) "
            f"| {_ratio(gw['rps'], up['rps'])} "
            f"| {up['p50_ms']:.2f} / {rel['p50_ms']:.2f} / {gw['p50_ms']:.2f} "
            f"| **{pair['p50_added_ms']:+.2f}** ({pair['p50_added_q1']:+.2f} to "
            f"{pair['p50_added_q3']:+.2f}) "
            f"| {rel['p99_ms']:.2f} / {gw['p99_ms']:.2f} "
            f"| {gw['cpu_pct']:.0f} | {rel['cpu_pct']:.0f} |"
        )
    total = sum(r[t]["requests"] for r in load.values() for t in TARGETS)
    errors = sum(r[t]["errors"] for r in load.values() for t in TARGETS)
    settled = sum(r["gateway"].get("settle_s", 0.0) for r in load.values())
    lines += [
        "",
        f"Requests measured: {total:,}; failed: {errors}. Before each run the harness waits "
        f"for the server to go idle: the gateway needed {settled:.1f} s in all "
        f"(the relay {sum(r['relay'].get('settle_s', 0.0) for r in load.values()):.1f} s); "
        f"its log holds {results.get('unhandled_errors', 0)} `unhandled_error` lines "
        "(wrk hanging up on streams when its time is up).",
        "",
    ]

    if meta.get("before"):
        lines += render_before(results)
    tt = results["ttfb"]
    lines += [
        "### Time to first byte / token (1 connection, medians)",
        "",
        "| stream | samples | upstream first token ms | relay first byte / token ms "
        "| gateway first byte / token ms | gateway - relay, first token | whole answer ms "
        "relay / gateway |",
        "| --- | ---: | ---: | --- | --- | ---: | --- |",
    ]
    for kind, row in tt.items():
        up, rel, gw = row["upstream"], row["relay"], row["gateway"]
        lines.append(
            f"| {kind} | {gw['samples']} | {up['first_token_ms']:.2f} "
            f"| {rel['first_byte_ms']:.2f} / {rel['first_token_ms']:.2f} "
            f"| {gw['first_byte_ms']:.2f} / {gw['first_token_ms']:.2f} "
            f"| {gw['first_token_ms'] - rel['first_token_ms']:+.2f} "
            f"| {rel['total_ms']:.2f} / {gw['total_ms']:.2f} |"
        )
    res = results["startup"]
    lines += [
        "",
        f"`paced` = the fake upstream waits {meta['pace_ms']:g} ms between chunks; a gateway that "
        "passes chunk timing through keeps its first token close to the relay's.",
        "",
        "### Memory and start-up",
        "",
        "| measure | gateway | relay |",
        "| --- | ---: | ---: |",
        f"| idle RSS, both plugins loaded (MB) | {res['gateway_rss']:.1f} "
        f"| {res['relay_rss']:.1f} |",
        f"| peak RSS under load, pollinations only (MB) | {results['peak_rss_mb']:.1f} "
        f"| {results['relay_peak_rss_mb']:.1f} |",
        f"| cold start, process start to first 200 on /v1/models (s, median of {res['runs']}) "
        f"| {res['gateway']:.3f} | {res['relay']:.3f} |",
        f"| `import g4f_server.app`: wall ms over a bare interpreter / -X importtime sum "
        f"| {results['import']['wall_ms']:.0f} / {results['import']['importtime_ms']:.0f} | |",
    ]
    if results.get("import_all"):
        both = results["import_all"]
        lines.append(
            "| kernel and both plugins imported: wall ms / -X importtime sum "
            f"| {both['wall_ms']:.0f} / {both['importtime_ms']:.0f} | |"
        )
    if results.get("workers"):
        lines += render_workers(results["workers"])
    if "protocols" in results:
        lines += render_protocols(results["protocols"])
    lines += ["", "### Against the targets", ""]
    for text, value, flag in targets(results) + protocol_targets(results.get("protocols", {})):
        lines.append(f"- {text}: {value} — {_ok(flag)}")
    return "\n".join(lines) + "\n"


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    pairs, out = results["pairs"], []
    for key, pair in pairs.items():
        if key.endswith("/c32"):
            ratio = pair["ratio"]
            out.append((f"{key} throughput >= 50% of the relay", f"{ratio:.0%}", ratio >= 0.5))
    for key, pair in pairs.items():
        if key.endswith("/c1"):
            added = pair["p50_added_ms"]
            out.append((f"{key} p50 within 0.5 ms of the relay", f"{added:+.2f} ms", added <= 0.5))
    for kind, row in results["ttfb"].items():
        added = row["gateway"]["first_token_ms"] - row["relay"]["first_token_ms"]
        out.append(
            (f"first token ({kind}) within 1 ms of the relay", f"{added:+.2f} ms", added <= 1.0)
        )
    workers = results.get("workers")
    for name, row in (workers or {}).get("rows", {}).items():
        scaling = row["scaling"][1]
        out.append(
            (
                f"--workers {workers['n']} {name}/c{workers['conns']} >= 1.6x one worker",
                f"{scaling:.2f}x",
                scaling >= 1.6,
            )
        )
    rss = results["startup"]["gateway_rss"]
    out.append(("idle RSS <= 50 MB with both plugins", f"{rss:.1f} MB", rss <= 50))
    cold = results["startup"]["gateway"]
    out.append(("cold start <= 0.5 s", f"{cold:.3f} s", cold <= 0.5))
    return out


def write_doc(path: Path, section: str) -> None:
    block = f"{START_MARK}\n{section}{END_MARK}\n"
    text = path.read_text() if path.exists() else ""
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        tail = rest.split(END_MARK, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = (text.rstrip() + "\n\n" if text else "# Performance\n\n") + block
    path.write_text(text)


# --------------------------------------------------------------------------- main


def _median_result(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "requests"}
    out["requests"] = sum(r["requests"] for r in runs)
    out["errors"] = sum(r["errors"] for r in runs)
    return out


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _pair_summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Median and quartiles of the per-pair gateway/relay ratios and added p50s (and of
    the earlier checkout's ratios, with --before)."""
    r1, r2, r3 = _quartiles([r["ratio"] for r in rows])
    a1, a2, a3 = _quartiles([r["p50_added_ms"] for r in rows])
    extra = {}
    if all("before_ratio" in r for r in rows):
        extra["before_ratio"] = _quartiles([r["before_ratio"] for r in rows])
    return extra | {
        "pairs": len(rows),
        "ratio": r2,
        "ratio_q1": r1,
        "ratio_q3": r3,
        "p50_added_ms": a2,
        "p50_added_q1": a1,
        "p50_added_q3": a3,
    }


def compile_bytecode(python: str) -> None:
    """Compile our sources and the venv to bytecode first, as ``pip install`` (and ``./dev``)
    does. Without it, cold start and import time measure the compiler, not the code: a
    process started with PYTHONDONTWRITEBYTECODE=1 re-compiles every module it imports."""
    venv = Path(python).resolve().parent.parent
    dirs = [str(ROOT / "core"), str(ROOT / "plugins"), str(BENCH)]
    dirs += [str(p) for p in venv.glob("lib/python3*/site-packages")]
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", *dirs], check=False,
                   stdout=subprocess.DEVNULL, timeout=600)  # fmt: skip


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import aiohttp

    compile_bytecode(sys.executable)

    wrk = wrk_version()
    kind = args.loadgen
    if kind == "auto":
        kind = "wrk" if wrk else "python"
    if kind == "wrk" and not wrk:
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    if not wrk and not args.smoke:
        print("wrk not found (apt-get update && apt-get install -y wrk); using bench/loadgen.py")
    load = Load(kind, args.wrk_threads, workdir)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    bench = Bench(args, workdir)
    results: dict[str, Any] = {
        "meta": machine()
        | {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "aiohttp": aiohttp.__version__,
            "loop": loop,
            "loadgen": (wrk or "wrk") + f" -t{args.wrk_threads}"
            if kind == "wrk"
            else "bench/loadgen.py",
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "pace_ms": args.pace_ms,
            "command": args.command,
        }
    }
    try:
        print(f"work dir {workdir}", flush=True)
        upstream = bench.start_upstream()
        relay_port, gw_port = free_port(), free_port()
        relay = bench.start_relay(relay_port)
        gateway, _ = bench.start_gateway(gw_port)
        ports = {"upstream": bench.upstream_port, "relay": relay_port, "gateway": gw_port}
        procs = {"upstream": upstream, "relay": relay, "gateway": gateway}
        targets: tuple[str, ...] = TARGETS
        if args.before:  # the other checkout's gateway, in the same rounds
            ports["before"] = free_port()
            procs["before"], _ = bench.start_gateway(
                ports["before"], name="before", tree=args.before
            )
            targets = (*TARGETS, "before")
            results["meta"]["before"] = f"{args.before} at {_commit(args.before)}"
            results["meta"]["after"] = f"{ROOT} at {_commit(ROOT)}"
        for name, port in ports.items():
            verify(port, name)

        scenarios = [(s, c) for s in (False, True) for c in args.conns]
        raw: dict[str, dict[str, list[dict]]] = {}
        pairs: dict[str, list[dict[str, float]]] = {}
        warmed: set[str] = set()
        for round_no in range(args.rounds):
            for stream, conns in scenarios:
                key = f"{'stream' if stream else 'json'}/c{conns}"
                # Relay and gateway back to back, in alternating order: the machine's speed
                # drifts within seconds, so each pair shares its weather and the ratio is
                # taken per pair (the median of the pairs is reported).
                order = targets if round_no % 2 == 0 else (targets[0], *targets[:0:-1])
                rows = {}
                for name in order:
                    proc = procs[name]
                    tag = f"[{round_no + 1}/{args.rounds}] {key:<10} {name:<8}"
                    print(tag, end=" ", flush=True)
                    row = measure(
                        bench, load, proc, ports[name], stream, conns, warmup=key not in warmed
                    )
                    print(
                        f"{row['rps']:>9,.0f} req/s  p50 {row['p50_ms']:6.2f} ms  "
                        f"p99 {row['p99_ms']:7.2f} ms  cpu {row['cpu_pct']:4.0f}%  "
                        f"errors {row['errors']}",
                        flush=True,
                    )
                    raw.setdefault(key, {}).setdefault(name, []).append(row)
                    rows[name] = row
                warmed.add(key)
                gw, rel = rows["gateway"], rows["relay"]
                pair = {
                    "ratio": gw["rps"] / max(rel["rps"], 1e-9),
                    "p50_added_ms": gw["p50_ms"] - rel["p50_ms"],
                }
                if "before" in rows:
                    pair["before_ratio"] = rows["before"]["rps"] / max(rel["rps"], 1e-9)
                pairs.setdefault(key, []).append(pair)
        results["load"] = {
            key: {name: _median_result(rows) for name, rows in by.items()}
            for key, by in raw.items()
        }
        results["pairs"] = {key: _pair_summary(rows) for key, rows in pairs.items()}
        results["peak_rss_mb"] = max(r["gateway"]["peak_rss_mb"] for r in results["load"].values())
        results["relay_peak_rss_mb"] = max(
            r["relay"]["peak_rss_mb"] for r in results["load"].values()
        )
        print("protocols ...", flush=True)
        results["protocols"] = protocol_rounds(bench, load, gateway, gw_port, args.rounds)

        print("time to first byte/token ...", flush=True)
        results["ttfb"] = {}
        for kind_name, model, count in (
            ("unpaced", "openai", args.ttfb_samples),
            ("paced", "openai-paced", args.paced_samples),
        ):
            results["ttfb"][kind_name] = {name: ttfb(ports[name], count, model) for name in TARGETS}

        if "before" in procs:
            bench.stop(procs["before"])
        if args.workers > 1:
            print(f"--workers {args.workers} ...", flush=True)
            results["workers"] = worker_rounds(bench, load, gateway, gw_port, args.workers)
        bench.stop(gateway)

        print("cold start and idle RSS ...", flush=True)
        results["startup"] = cold_starts(bench, args.cold_starts)
        print("import time ...", flush=True)
        runs = max(1, min(5, args.cold_starts))
        results["import"] = import_time(bench.python, "g4f_server.app", runs)
        modules = "g4f_server.app, g4f_server_pollinations, g4f_server_copilot"
        results["import_all"] = None if args.smoke else import_time(bench.python, modules, runs)
        gateway_log = workdir / "gateway.log"
        log_lines = gateway_log.read_text(errors="replace").splitlines()
        results["access_lines"] = sum(1 for line in log_lines if "event='request'" in line)
        results["unhandled_errors"] = sum(1 for line in log_lines if "'unhandled_error'" in line)
    finally:
        bench.stop_all()
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark g4f-server against a bare relay and the fake upstream.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # Many short rounds rather than a few long ones: this machine's speed drifts by up to
    # 1.7x within seconds (the relay alone: 268-445 us of CPU per request in one minute),
    # so only back-to-back pairs share their weather, and only many pairs give a median.
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up s per server, scenario")
    parser.add_argument("--conns", default="1,32", help="connection counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (pairs)")
    parser.add_argument(
        "--workers", type=int, help="scaling check (2; --smoke: 0); 0 or 1 skips it"
    )
    parser.add_argument("--ttfb-samples", type=int, default=300)
    parser.add_argument("--paced-samples", type=int, default=40)
    parser.add_argument("--pace-ms", type=float, default=2.0, help="chunk gap of the paced model")
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--upstream-procs", type=int, default=2)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--output", default=str(ROOT / "docs" / "performance.md"), help="markdown file; - = none"
    )
    parser.add_argument("--json", dest="json_out", help="also write the raw results here")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="a second checkout with its own .venv (e.g. `git worktree add --detach DIR REV` "
        "and `./dev lint` in it): its gateway runs in the same rounds as relay and this one, "
        "and the table shows both ratios",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    parser.add_argument(
        "--smoke", action="store_true", help="1 s runs, 1 connection, no workers, no docs"
    )
    parser.add_argument(
        "--only",
        choices=("protocols", "scale", "controls", "websocket", "upstreams"),
        help="only the protocol scenarios (streamed chat, Responses, Messages), or only "
        "Responses over WebSocket beside SSE (bench/websocket.py), or only "
        "the shared-state ones (a conversation turn: embedded vs Redis, 1 vs 2 instances "
        "behind nginx, bench/scale.py), or only key + limits + metrics against a plain "
        "gateway (bench/controls.py), or only the openai_compat plugin against the "
        "Pollinations one on the same fake upstream, with embeddings (bench/upstreams.py); "
        "no docs",
    )
    args = parser.parse_args(argv)
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    args.command = f".venv/bin/python bench/run.py {shown}".strip()
    args.conns = [int(c) for c in str(args.conns).split(",") if c.strip()]
    if args.before is not None:
        args.before = args.before.resolve()
        if not (args.before / ".venv" / "bin" / "g4f-server").exists():
            parser.error(f"--before {args.before}: no .venv/bin/g4f-server (run ./dev lint there)")
    if args.only and args.output == str(ROOT / "docs" / "performance.md"):
        args.output = "-"
    if args.workers is None:
        args.workers = 0 if args.smoke else 2
    if args.smoke:
        args.duration, args.warmup, args.conns, args.rounds = 1.0, 0.0, [1], 1
        args.ttfb_samples, args.paced_samples, args.cold_starts = 5, 2, 1
        args.workers = args.workers or 0  # no scaling check unless asked for
        if args.output == str(ROOT / "docs" / "performance.md"):
            args.output = "-"
    return args


def run_protocols(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``--only protocols``: the fake upstream and the gateway, nothing else."""
    compile_bytecode(sys.executable)
    kind = args.loadgen if args.loadgen != "auto" else ("wrk" if wrk_version() else "python")
    bench = Bench(args, workdir)
    try:
        bench.start_upstream()
        port = free_port()
        gateway, _ = bench.start_gateway(port)
        load = Load(kind, args.wrk_threads, workdir)
        return protocol_rounds(bench, load, gateway, port, args.rounds)
    finally:
        bench.stop_all()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="g4f-bench-"))
    try:
        if args.only == "protocols":
            protocols = run_protocols(args, workdir)
        elif args.only == "websocket":
            import websocket

            compile_bytecode(sys.executable)
            bench = Bench(args, workdir)
            try:
                bench.start_upstream()
                port = free_port()
                gateway, _ = bench.start_gateway(port)
                count = 50 if args.smoke else 400
                sockets = websocket.run_websocket(gateway, port, HEADERS, count, args.rounds)
            finally:
                bench.stop_all()
        elif args.only == "scale":
            import scale

            compile_bytecode(sys.executable)
            scaled = scale.run_scale(Bench(args, workdir), args, workdir, HEADERS)
        elif args.only == "controls":
            import controls

            compile_bytecode(sys.executable)
            controlled = controls.run_controls(Bench(args, workdir), args, workdir)
        elif args.only == "upstreams":
            import upstreams

            compile_bytecode(sys.executable)
            compared = upstreams.run_upstreams(Bench(args, workdir), args, workdir)
        else:
            results = run(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.only == "websocket":
        print("\n".join(websocket.render_websocket(sockets)))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(sockets, indent=2))
    if args.only == "upstreams":
        print("\n".join(upstreams.render_upstreams(compared)))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(compared, indent=2))
        return 0
    if args.only == "controls":
        print("\n".join(controls.render_controls(controlled)))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(controlled, indent=2))
        return 0
    if args.only == "scale":
        print("\n".join(scale.render_scale(scaled)))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(scaled, indent=2))
        return 0
    if args.only == "protocols":
        print("\n".join([*render_protocols(protocols), ""]))
        for text, value, flag in protocol_targets(protocols):
            print(f"- {text}: {value} — {_ok(flag)}")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(protocols, indent=2))
        return 0
    table = render(results)
    print()
    print(table)
    if args.output != "-":
        write_doc(Path(args.output), table)
        print(f"written to {args.output}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
