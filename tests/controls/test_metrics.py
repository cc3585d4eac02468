"""/metrics through the real server, parsed by prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from g4f_server import errors, events
from tests.fake_providers import Batched, Scripted
from tests.server_process import server_process

CHAT = "/v1/chat/completions"
FINISH = events.Finish("stop")
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def value(found: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        s.value for s in found.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_metrics_count_requests_tokens_streams_and_limits(make_client: Any) -> None:
    broken = Scripted(name="Broken", priority=1, fail=errors.ProviderError("down"))
    client = await make_client(
        broken, Scripted(usage=True), metrics=True, limits={"per_client": {"rpm": 4}}
    )
    assert (await client.post(CHAT, json=BODY)).status == 200
    resp = await client.post(CHAT, json={**BODY, "stream": True})
    assert resp.status == 200
    await resp.read()
    assert (await client.post(CHAT, json={**BODY, "model": "nope"})).status == 404
    resp = await client.get("/metrics")  # the 4th request of the minute
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(await resp.text())
    route = "/v1/chat/completions"
    assert (
        value(
            found,
            "g4f_requests_total",
            route=route,
            status="200",
            provider="Echo",
            model="echo-1",  # the served model, not the name asked for
        )
        == 2
    )
    assert value(found, "g4f_requests_total", route=route, status="404", model="") == 1
    assert value(found, "g4f_request_duration_seconds_count", route=route) == 3
    assert value(found, "g4f_time_to_first_token_seconds_count", provider="Echo") == 2
    assert value(found, "g4f_tokens_total", provider="Echo", kind="prompt") == 22
    assert value(found, "g4f_tokens_total", provider="Echo", kind="completion") == 4
    assert value(found, "g4f_streams_in_progress") == 0
    # Once: after its failure, Broken is tried after Echo for a minute (passive health,
    # providers/health.py), so the streamed request never reached it.
    assert (
        value(found, "g4f_provider_failures_total", provider="Broken", code="provider_error") == 1
    )
    assert (await client.get("/metrics")).status == 429


async def test_rate_limit_rejections_are_counted(make_client: Any) -> None:
    client = await make_client(
        Scripted(), metrics=True, metrics_public=True, limits={"per_client": {"rpm": 1}}
    )
    assert (await client.post(CHAT, json=BODY)).status == 200
    assert (await client.post(CHAT, json=BODY)).status == 429
    found = samples(await (await client.get("/metrics")).text())  # public: not counted
    assert value(found, "g4f_rate_limited_total", kind="rpm") == 1


async def test_metrics_need_the_key_unless_public(make_client: Any) -> None:
    client = await make_client(Scripted(), metrics=True, api_key="k")
    assert (await client.get("/metrics")).status == 401
    ok = await client.get("/metrics", headers={"Authorization": "Bearer k"})
    assert ok.status == 200
    public = await make_client(Scripted(), metrics=True, metrics_public=True, api_key="k")
    assert (await public.get("/metrics")).status == 200


async def test_metrics_are_off_by_default(make_client: Any) -> None:
    client = await make_client(Scripted())
    resp = await client.get("/metrics")
    assert resp.status == 404
    assert "--metrics" in (await resp.json())["error"]["message"]


async def test_the_model_label_is_the_served_model_not_the_name_sent(make_client: Any) -> None:
    """``gpt-4.1*`` is a glob of the built-in table: every name a client makes up that
    matches it is served, but must not become a series of its own."""
    client = await make_client(Scripted(), metrics=True)
    for name in ("gpt-4.1-a", "gpt-4.1-b", "gpt-4.1-zzz"):
        assert (await client.post(CHAT, json={**BODY, "model": name})).status == 200
    found = samples(await (await client.get("/metrics")).text())
    models = {s.labels["model"] for s in found["g4f_requests_total"] if s.labels["provider"]}
    assert models == {"echo-1"}
    assert value(found, "process_cpu_seconds_total") > 0  # the standard process metrics
    assert value(found, "process_resident_memory_bytes") > 0


def _get(url: str) -> str:
    """On a connection of its own: the kernel hands each to any of the workers."""
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.read().decode()


def test_workers_are_summed_in_every_scrape(tmp_path: Path) -> None:
    """``--workers 2 --metrics``: each scrape (any worker) counts every worker's
    requests, so a counter never goes down from one scrape to the next, not even when a
    worker is killed and replaced; after the one-second flush the sum is exact."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "G4F_DATA_DIR": str(tmp_path / "d")}
    args = ("--workers", "2", "--metrics", "--metrics-public", "--load-plugins", "none")
    with server_process(*args, env=env) as (proc, base):
        time.sleep(1.2)  # both workers have written their first file
        health = lambda text: value(samples(text), "g4f_requests_total", route="/health")  # noqa: E731
        start = health(_get(base + "/metrics"))  # server_process's own start-up polls
        seen = []
        for n in range(30):
            _get(base + "/health")
            if n % 3 == 2:
                seen.append(health(_get(base + "/metrics")))
        assert seen == sorted(seen), seen  # monotonic
        time.sleep(1.2)
        text = _get(base + "/metrics")
        assert health(text) == start + 30
        found = samples(text)
        assert value(found, "g4f_workers") == 2
        assert value(found, "process_cpu_seconds_total") > 0
        assert value(found, "process_resident_memory_bytes") > 50e6  # two Pythons

        worker = next(
            int(pid)
            for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
        )
        os.kill(worker, signal.SIGKILL)
        after = []
        for _ in range(20):  # the dead worker's requests stay counted
            with contextlib.suppress(OSError):
                after.append(health(_get(base + "/metrics")))
            time.sleep(0.1)
        assert after and min(after) >= start + 30, after


async def test_a_stream_the_client_leaves_is_counted_and_gives_back_what_it_held(
    make_client: Any,
) -> None:
    """A client that hangs up mid-stream: the streams gauge goes back to 0, its
    concurrency slot is given back (a concurrency of 1 admits the next request), and the
    request is counted once, as the 499 the edge answers it with."""
    provider = Batched(
        items=[events.TextDelta("first"), "wait", *[events.TextDelta(" more")] * 50, FINISH]
    )
    client = await make_client(
        provider, metrics=True, metrics_public=True, limits={"per_client": {"concurrency": 1}}
    )
    resp = await client.post(CHAT, json={**BODY, "model": "batch-1", "stream": True})
    assert resp.status == 200
    while b"first" not in await resp.content.readline():  # the role's chunk comes first
        pass
    found = samples(await (await client.get("/metrics")).text())
    assert value(found, "g4f_streams_in_progress") == 1
    resp.close()  # the client leaves; the next chunks find the connection gone
    provider.gate.set()
    for _ in range(200):
        found = samples(await (await client.get("/metrics")).text())
        if value(found, "g4f_streams_in_progress") == 0:
            break
        await asyncio.sleep(0.01)
    assert value(found, "g4f_streams_in_progress") == 0
    route = "/v1/chat/completions"
    assert value(found, "g4f_requests_total", route=route) == 1
    assert value(found, "g4f_requests_total", route=route, status="499") == 1
    assert value(found, "g4f_request_duration_seconds_count", route=route) == 1
    provider.gate.clear()
    provider.items = [events.TextDelta("again"), FINISH]
    assert (await client.post(CHAT, json={**BODY, "model": "batch-1"})).status == 200
