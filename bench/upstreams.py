"""The openai_compat plugin on the hot path (``bench/run.py --only upstreams``).

Against the same fake upstream (``bench/fake_upstream.py``), measured in interleaved
pairs (the machine's speed drifts within seconds; a pair shares its weather):

- chat completions, plain and streamed: a gateway with only the Pollinations plugin
  against one with only the openai_compat plugin (``--upstreams vllm`` pointed at the fake
  upstream's ``/v1``). Target (issue 26): openai_compat keeps at least 90% of
  Pollinations' req/s, per-pair median.
- embeddings: 8 short texts per request (``text-embedding-3-small``, routed to the fake's
  ``fake-embed``, 1,536 floats each) through the openai_compat gateway, asked as base64
  (openai-python's default) and as floats, beside the bare relay passing the same request
  through (the upstream answers JSON floats to both). Shown, not held to a target.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import loadgen
import run

TARGET = 0.90
EMBEDDINGS = ("embeddings", "embeddings-float")
# label -> (server, request of run.REQUESTS); the relay passes the base64 request through
# (the fake upstream answers floats to every request).
EMBEDDING_RUNS = {
    "relay": ("relay", "embeddings"),
    "gateway base64": ("openai_compat", "embeddings"),
    "gateway float": ("openai_compat", "embeddings-float"),
}


def openai_compat_env(upstream_url: str) -> dict[str, str]:
    # vllm: a local preset, so no key; the fake upstream speaks OpenAI's protocol at /v1.
    return {"G4F_UPSTREAMS": "vllm", "VLLM_BASE_URL": upstream_url + "/v1"}


def verify_embeddings(port: int, name: str) -> None:
    """One base64 and one float answer, checked for shape (8 vectors of 1,536)."""

    async def check() -> None:
        conn = loadgen.Connection(run.HOST, port)
        try:
            for scenario in EMBEDDINGS:
                path, body = run.REQUESTS[scenario]
                raw = loadgen.build_request(run.HOST, port, path, body, run.HEADERS)
                answer = await conn.request(raw)
                if answer.status != 200:
                    raise RuntimeError(f"{name} {scenario}: {answer.status} {answer.body[:300]!r}")
                data = json.loads(answer.body)["data"]
                first = data[0]["embedding"]
                size = len(base64.b64decode(first)) // 4 if isinstance(first, str) else len(first)
                if len(data) != 8 or size != 1536:
                    raise RuntimeError(f"{name} {scenario}: {len(data)} vectors of {size}")
        finally:
            await conn.close()

    asyncio.run(check())


def run_upstreams(bench: Any, args: Any, workdir: Path) -> dict[str, Any]:
    kind = args.loadgen if args.loadgen != "auto" else ("wrk" if run.wrk_version() else "python")
    load = run.Load(kind, args.wrk_threads, workdir)
    try:
        bench.start_upstream()
        ports = {name: run.free_port() for name in ("pollinations", "openai_compat", "relay")}
        pollinations, _ = bench.start_gateway(ports["pollinations"], name="pollinations")
        compat, _ = bench.start_gateway(
            ports["openai_compat"],
            plugins="openai_compat",
            name="openai_compat",
            extra_env=openai_compat_env(bench.upstream_url),
        )
        relay = bench.start_relay(ports["relay"])
        procs = {"pollinations": pollinations, "openai_compat": compat, "relay": relay}
        run.verify(ports["pollinations"], "pollinations")
        run.verify(ports["openai_compat"], "openai_compat")
        verify_embeddings(ports["openai_compat"], "openai_compat")
        verify_embeddings(ports["relay"], "relay")
        chat = _chat_rounds(bench, load, procs, ports, args)
        embeddings = _embedding_rounds(bench, load, procs, ports, args)
    finally:
        bench.stop_all()
    return {"chat": chat, "embeddings": embeddings, "loadgen": kind, "rounds": args.rounds}


def _chat_rounds(
    bench: Any, load: Any, procs: dict[str, Any], ports: dict[str, int], args: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = ("pollinations", "openai_compat")
    for stream in (False, True):
        for conns in args.conns:
            key = f"{'stream' if stream else 'json'}/c{conns}"
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            ratios, cpu = [], []
            for number in range(args.rounds):
                order = names if number % 2 == 0 else tuple(reversed(names))
                got = {}
                for name in order:
                    print(f"[{number + 1}/{args.rounds}] chat {key:<9} {name:<14}", end=" ")
                    got[name] = run.measure(
                        bench, load, procs[name], ports[name], stream, conns, warmup=number == 0
                    )
                    rows[name].append(got[name])
                    print(f"{got[name]['rps']:>9,.0f} req/s  p50 {got[name]['p50_ms']:6.2f} ms")
                base, ours = got["pollinations"], got["openai_compat"]
                ratios.append(ours["rps"] / max(base["rps"], 1e-9))
                cpu.append(_cpu_per_request(ours) / _cpu_per_request(base))
            out[key] = {
                "load": {name: run._median_result(r) for name, r in rows.items()},
                "ratio": run._quartiles(ratios),
                "cpu_ratio": run._quartiles(cpu),
            }
    return out


def _embedding_rounds(
    bench: Any, load: Any, procs: dict[str, Any], ports: dict[str, int], args: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for conns in args.conns:
        key = f"c{conns}"
        rows: dict[str, list[dict[str, Any]]] = {label: [] for label in EMBEDDING_RUNS}
        ratios: dict[str, list[float]] = {"base64": [], "float": []}
        for number in range(args.rounds):
            labels = list(EMBEDDING_RUNS)
            order = labels if number % 2 == 0 else labels[::-1]
            got = {}
            for label in order:
                server, scenario = EMBEDDING_RUNS[label]
                print(f"[{number + 1}/{args.rounds}] embeddings c{conns:<3} {label:<22}", end=" ")
                got[label] = run.measure(
                    bench, load, procs[server], ports[server], False, conns,
                    warmup=number == 0, protocol=scenario,
                )  # fmt: skip
                rows[label].append(got[label])
                print(f"{got[label]['rps']:>9,.0f} req/s  p50 {got[label]['p50_ms']:6.2f} ms")
            relay = max(got["relay"]["rps"], 1e-9)
            ratios["base64"].append(got["gateway base64"]["rps"] / relay)
            ratios["float"].append(got["gateway float"]["rps"] / relay)
        out[key] = {
            "load": {label: run._median_result(r) for label, r in rows.items()},
            "ratio": {name: run._quartiles(values) for name, values in ratios.items()},
        }
    return out


def _cpu_per_request(row: dict[str, Any]) -> float:
    return max(row["cpu_pct"], 1e-9) / max(row["rps"], 1e-9)


def render_upstreams(results: dict[str, Any]) -> list[str]:
    lines = [
        f"Load from {results['loadgen']}, {results['rounds']} interleaved rounds; "
        "medians, per-pair ratios with quartiles.",
        "",
        "| chat scenario | Pollinations plugin req/s | openai_compat plugin req/s "
        "| req/s ratio | CPU per request ratio | p50 ms Pollinations / openai_compat |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    worst = None
    for key, row in results["chat"].items():
        base, ours = row["load"]["pollinations"], row["load"]["openai_compat"]
        q, c = row["ratio"], row["cpu_ratio"]
        worst = q[1] if worst is None else min(worst, q[1])
        lines.append(
            f"| {key} | {base['rps']:,.0f} | {ours['rps']:,.0f} "
            f"| **{q[1]:.2f}** ({q[0]:.2f}-{q[2]:.2f}) | {c[1]:.2f} ({c[0]:.2f}-{c[2]:.2f}) "
            f"| {base['p50_ms']:.2f} / {ours['p50_ms']:.2f} |"
        )
    lines += [
        "",
        "| embeddings (8 texts x 1,536 floats) | relay req/s | gateway base64 req/s "
        "| gateway float req/s | base64 / relay | float / relay | p50 ms relay / base64 / float |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, row in results["embeddings"].items():
        load, ratio = row["load"], row["ratio"]
        b, f = ratio["base64"], ratio["float"]
        lines.append(
            f"| {key} | {load['relay']['rps']:,.0f} | {load['gateway base64']['rps']:,.0f} "
            f"| {load['gateway float']['rps']:,.0f} "
            f"| {b[1]:.2f} ({b[0]:.2f}-{b[2]:.2f}) | {f[1]:.2f} ({f[0]:.2f}-{f[2]:.2f}) "
            f"| {load['relay']['p50_ms']:.2f} / {load['gateway base64']['p50_ms']:.2f} "
            f"/ {load['gateway float']['p50_ms']:.2f} |"
        )
    if worst is not None:
        verdict = "met" if worst >= TARGET else "NOT met"
        lines += [
            "",
            f"- openai_compat keeps >= {TARGET:.0%} of the Pollinations plugin's req/s: "
            f"worst scenario {worst:.2f} — {verdict}",
        ]
    return lines
