"""``bench/run.py --only websocket``: a Responses turn over the WebSocket mode beside the
same turn over SSE, each on one connection kept open, one response after the other (a
coding agent's loop). Reported per response: the wall time and the gateway's CPU.

Both clients are aiohttp in this process, so the client's own cost is alike on both
sides; the gateway's CPU is read from /proc for its process, as bench/run.py does.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp

BODY = {
    "model": "openai",
    "instructions": "You are a helpful assistant.",
    "input": "Say twenty words.",
    "store": False,
}


async def _sse(base: str, headers: dict[str, str], count: int) -> None:
    async with aiohttp.ClientSession(headers=headers) as http:
        for _ in range(count):
            async with http.post(base + "/v1/responses", json={**BODY, "stream": True}) as resp:
                text = await resp.read()
                if resp.status != 200 or b"response.completed" not in text:
                    raise RuntimeError(f"SSE turn failed: {resp.status} {text[:200]!r}")


async def _ws(base: str, headers: dict[str, str], count: int) -> None:
    url = base.replace("http://", "ws://") + "/v1/responses"
    async with aiohttp.ClientSession(headers=headers) as http, http.ws_connect(url) as ws:
        for _ in range(count):
            await ws.send_str(json.dumps({"type": "response.create", **BODY}))
            while True:
                message = await ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"WebSocket closed: {message}")
                data = message.data
                if '"response.completed"' in data[:60]:
                    break
                if '"type":"error"' in data or '"response.failed"' in data[:60]:
                    raise RuntimeError(f"WebSocket turn failed: {data[:200]}")


def run_websocket(
    proc: Any, port: int, headers: dict[str, str], count: int, rounds: int
) -> dict[str, Any]:
    """Per transport, the median over ``rounds`` (alternating order) of ``count``
    sequential responses: ms per response (wall) and gateway CPU ms per response."""
    base = f"http://127.0.0.1:{port}"
    clients = {"sse": _sse, "websocket": _ws}
    rows: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in clients}
    for client in clients.values():  # warm-up: imports, first connections
        asyncio.run(client(base, headers, max(count // 10, 5)))
    for round_no in range(rounds):
        order = list(clients) if round_no % 2 == 0 else list(clients)[::-1]
        for name in order:
            cpu0, _ = proc.usage()
            started = time.perf_counter()
            asyncio.run(clients[name](base, headers, count))
            wall = time.perf_counter() - started
            cpu1, _ = proc.usage()
            rows[name]["wall"].append(1000 * wall / count)
            rows[name]["cpu"].append(1000 * (cpu1 - cpu0) / count)
            print(f"[{round_no + 1}/{rounds}] {name:<9} {1000 * wall / count:6.2f} ms/response")
    return {
        name: {key: statistics.median(values) for key, values in row.items()}
        for name, row in rows.items()
    } | {"count": count, "rounds": rounds}


def render_websocket(result: dict[str, Any]) -> list[str]:
    sse, ws = result["sse"], result["websocket"]
    return [
        "",
        "### Responses over WebSocket beside SSE (one connection, sequential responses)",
        "",
        f"{result['count']} responses per run, median of {result['rounds']} runs.",
        "",
        "| transport | ms per response | gateway CPU ms per response |",
        "| --- | ---: | ---: |",
        f"| SSE (POST, keep-alive) | {sse['wall']:.2f} | {sse['cpu']:.2f} |",
        f"| WebSocket (response.create) | {ws['wall']:.2f} | {ws['cpu']:.2f} |",
        f"| WebSocket / SSE | {ws['wall'] / sse['wall']:.2f} | {ws['cpu'] / sse['cpu']:.2f} |",
    ]
