"""/metrics through the real server, parsed by prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from g4f_server import errors
from tests.fake_providers import Scripted

CHAT = "/v1/chat/completions"
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
            model="gpt-4o-mini",
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
