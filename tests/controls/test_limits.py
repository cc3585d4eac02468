"""Rate limits through the real server: each kind reaches its 429 at the exact count,
with Retry-After and OpenAI's x-ratelimit-* headers; named keys and their models."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict
from typer.testing import CliRunner

from g4f_server import errors
from g4f_server.cli import app as cli_app
from g4f_server.config import AppConfig, ConfigError
from g4f_server.controls.limits import (
    MemoryLimiter,
    Rule,
    Ticket,
    rate_headers,
    reserve_tokens_now,
)
from g4f_server.controls.wiring import check
from g4f_server.errors import RateLimitError
from g4f_server.storage.interfaces import Decision
from tests.fake_providers import Scripted
from tests.pipeline.test_emulation import WEATHER, Plain, ask

CHAT = "/v1/chat/completions"
CALL = '{"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}}}'


# With metrics on, the limits admit through the edge's plain call (wiring.ON_ADMIT); with
# them off, through their middleware: both ways count the same requests, the same way.
ADMISSIONS = pytest.mark.parametrize("metrics", [False, True], ids=["middleware", "edge"])


def body(model: str = "echo-1", text: str = "hi") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def assert_429(resp: Any, unit: str | None, limit: int) -> None:
    assert resp.status == 429
    error = (await resp.json())["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert int(resp.headers["Retry-After"]) >= 1
    if unit is not None:
        assert resp.headers[f"x-ratelimit-limit-{unit}"] == str(limit)
        assert resp.headers[f"x-ratelimit-remaining-{unit}"] == "0"
        assert resp.headers[f"x-ratelimit-reset-{unit}"].endswith("s")


@ADMISSIONS
async def test_requests_per_minute_per_client_address(make_client: Any, metrics: bool) -> None:
    client = await make_client(Scripted(), limits={"per_client": {"rpm": 3}}, metrics=metrics)
    for remaining in (2, 1, 0):
        resp = await client.post(CHAT, json=body())
        assert resp.status == 200
        assert resp.headers["x-ratelimit-limit-requests"] == "3"
        assert resp.headers["x-ratelimit-remaining-requests"] == str(remaining)
    await assert_429(await client.post(CHAT, json=body()), "requests", 3)
    # Streamed answers carry the headers too (they are set before the first byte).
    assert (await client.get("/v1/models")).status == 429


@ADMISSIONS
async def test_streamed_answer_carries_the_headers(make_client: Any, metrics: bool) -> None:
    client = await make_client(Scripted(), limits={"per_client": {"rpm": 5}}, metrics=metrics)
    resp = await client.post(CHAT, json={**body(), "stream": True})
    assert resp.status == 200
    assert resp.headers["x-ratelimit-remaining-requests"] == "4"
    assert b"[DONE]" in await resp.read()


@ADMISSIONS
async def test_open_paths_are_not_counted(make_client: Any, metrics: bool) -> None:
    client = await make_client(Scripted(), limits={"per_client": {"rpm": 1}}, metrics=metrics)
    for _ in range(3):
        assert (await client.get("/health")).status == 200
    assert (await client.post(CHAT, json=body())).status == 200
    await assert_429(await client.post(CHAT, json=body()), "requests", 1)


@ADMISSIONS
async def test_named_keys_have_their_own_counts(make_client: Any, metrics: bool) -> None:
    keys = {
        "alice": {"sha256": sha("alice-key"), "rpm": 2},
        "bob": {"sha256": sha("bob-key")},
    }
    client = await make_client(
        Scripted(), keys=keys, limits={"per_key": {"rpm": 1}}, metrics=metrics
    )
    for _ in range(2):
        assert (await client.post(CHAT, json=body(), headers=bearer("alice-key"))).status == 200
    resp = await client.post(CHAT, json=body(), headers=bearer("alice-key"))
    await assert_429(resp, "requests", 2)
    # bob has no limits of his own: per_key applies, counted apart from alice.
    assert (await client.post(CHAT, json=body(), headers=bearer("bob-key"))).status == 200
    await assert_429(await client.post(CHAT, json=body(), headers=bearer("bob-key")), "requests", 1)
    assert (await client.post(CHAT, json=body(), headers=bearer("eve-key"))).status == 401


@ADMISSIONS
async def test_keyed_options_requests_are_not_counted(make_client: Any, metrics: bool) -> None:
    """An OPTIONS request that carries a key (no Origin: not a preflight) passes the key
    check but is not counted, as one without a key is not."""
    keys = {"alice": {"sha256": sha("alice-key"), "rpm": 1}}
    client = await make_client(Scripted(), keys=keys, metrics=metrics)
    for _ in range(3):
        resp = await client.options(CHAT, headers=bearer("alice-key"))
        assert resp.status != 429 and "x-ratelimit-limit-requests" not in resp.headers
    assert (await client.post(CHAT, json=body(), headers=bearer("alice-key"))).status == 200
    resp = await client.post(CHAT, json=body(), headers=bearer("alice-key"))
    await assert_429(resp, "requests", 1)


async def test_single_key_and_named_keys_together(make_client: Any) -> None:
    client = await make_client(Scripted(), api_key="single", keys={"ci": {"sha256": sha("ci-key")}})
    assert (await client.post(CHAT, json=body(), headers=bearer("single"))).status == 200
    assert (await client.post(CHAT, json=body(), headers={"x-api-key": "ci-key"})).status == 200
    assert (await client.post(CHAT, json=body())).status == 401


async def test_key_allowed_models(make_client: Any) -> None:
    keys = {"narrow": {"sha256": sha("val-123"), "models": ["echo-*"]}}
    client = await make_client(Scripted(), keys=keys)
    assert (await client.post(CHAT, json=body("echo-1"), headers=bearer("val-123"))).status == 200
    resp = await client.post(CHAT, json=body("plain"), headers=bearer("val-123"))
    assert resp.status == 403
    error = (await resp.json())["error"]
    assert error["code"] == "model_not_allowed" and error["param"] == "model"
    assert "narrow" in error["message"] and "val-123" not in error["message"]


@ADMISSIONS
async def test_requests_per_minute_per_public_model(make_client: Any, metrics: bool) -> None:
    limits = {"models": {"echo-*": {"rpm": 2}}}
    client = await make_client(Scripted(), limits=limits, metrics=metrics)
    for _ in range(2):
        assert (await client.post(CHAT, json=body("echo-1"))).status == 200
    await assert_429(await client.post(CHAT, json=body("echo-1")), "requests", 2)
    # Another model is not limited, and nothing counted it.
    for _ in range(3):
        assert (await client.post(CHAT, json=body("plain"))).status == 200


@ADMISSIONS
async def test_tokens_per_minute(make_client: Any, metrics: bool) -> None:
    # Scripted reports 11 prompt + 2 completion tokens for "hi": 13 per answer.
    client = await make_client(
        Scripted(usage=True), limits={"per_client": {"tpm": 30}}, metrics=metrics
    )
    for used in (0, 13, 26):
        resp = await client.post(CHAT, json=body())
        assert resp.status == 200
        assert resp.headers["x-ratelimit-remaining-tokens"] == str(30 - used)
    await assert_429(await client.post(CHAT, json=body()), "tokens", 30)


@ADMISSIONS
async def test_tokens_are_estimated_when_the_provider_reports_none(
    make_client: Any, metrics: bool
) -> None:
    client = await make_client(Scripted(), limits={"per_client": {"tpm": 10}}, metrics=metrics)
    # ~12 estimated tokens (prompt and answer): the first answer uses the minute up.
    assert (await client.post(CHAT, json=body())).status == 200
    await assert_429(await client.post(CHAT, json=body()), "tokens", 10)


@pytest.mark.parametrize(
    ("limits_sent", "next_status"),
    [
        ({"max_completion_tokens": 10, "max_tokens": 95}, 200),  # the current name wins
        ({"max_tokens": 10}, 200),
        ({"max_tokens": 95}, 429),
        ({}, 429),  # none: the completion estimate (1024), at most the whole budget
    ],
)
async def test_the_reservation_counts_the_answers_token_limit(
    make_client: Any, limits_sent: dict[str, int], next_status: int
) -> None:
    """A request in flight holds its prompt's estimate (~8 tokens for "hi") plus its
    answer's limit (max_completion_tokens, else max_tokens, else the estimate): a budget
    of 100 is used up by 8 + 95, not by 8 + 10."""
    provider = Scripted(delay=0.5)
    client = await make_client(provider, metrics=True, limits={"per_client": {"tpm": 100}})
    first = asyncio.create_task(client.post(CHAT, json={**body(), **limits_sent}))
    while not provider.seen:
        await asyncio.sleep(0.01)
    resp = await client.post(CHAT, json=body())
    if next_status == 429:
        await assert_429(resp, "tokens", 100)
    else:
        assert resp.status == 200
    assert (await first).status == 200


async def test_with_metrics_on_what_an_ended_request_holds_is_given_back(
    make_client: Any,
) -> None:
    """With metrics on, the memory backend's slots and reservations are given back by
    the metrics middleware: after a failed answer (its reserved tokens refunded) and
    after a 429 raised inside the handler (a model's limit, with the client's slot
    already taken), whose kind the metrics count."""
    provider = Scripted(usage=True, fail=errors.ProviderError("upstream down"))
    client = await make_client(
        provider,
        metrics=True,
        metrics_public=True,
        limits={"per_client": {"tpm": 30, "concurrency": 1}, "models": {"thinker": {"rpm": 1}}},
    )
    # The failed answer reserved the whole minute (no max_tokens: 1024 estimated, at
    # most the budget): without the refund the next request would be refused.
    assert (await client.post(CHAT, json=body())).status == 502
    provider.fail = None
    resp = await client.post(CHAT, json=body())
    assert resp.status == 200
    assert resp.headers["x-ratelimit-remaining-tokens"] == "30"
    assert (await client.post(CHAT, json=body("thinker"))).status == 200
    await assert_429(await client.post(CHAT, json=body("thinker")), "requests", 1)
    # The slot the refused request took is free again (a concurrency of 1).
    assert (await client.post(CHAT, json=body())).status == 200
    text = await (await client.get("/metrics")).text()
    assert 'g4f_rate_limited_total{kind="rpm"} 1.0' in text


@ADMISSIONS
async def test_concurrent_requests(make_client: Any, metrics: bool) -> None:
    provider = Scripted(delay=0.5)
    client = await make_client(provider, limits={"per_client": {"concurrency": 2}}, metrics=metrics)
    first = [asyncio.create_task(client.post(CHAT, json=body())) for _ in range(2)]
    while len(provider.seen) < 2:
        await asyncio.sleep(0.01)
    resp = await client.post(CHAT, json=body())
    await assert_429(resp, None, 2)
    assert "concurrent" in (await resp.json())["error"]["message"]
    assert [r.status for r in await asyncio.gather(*first)] == [200, 200]
    # The slots are given back when the answers are done.
    assert (await client.post(CHAT, json=body())).status == 200


@ADMISSIONS
async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    make_client: Any, metrics: bool
) -> None:
    limits = {"per_client": {"rpm": 1}}
    client = await make_client(
        Scripted(), limits=limits, trusted_proxies=["127.0.0.0/8"], metrics=metrics
    )
    for address in ("203.0.113.1", "203.0.113.2"):
        headers = {"X-Forwarded-For": f"{address}, 127.0.0.5"}
        assert (await client.post(CHAT, json=body(), headers=headers)).status == 200
    headers = {"X-Forwarded-For": "203.0.113.1"}
    await assert_429(await client.post(CHAT, json=body(), headers=headers), "requests", 1)

    untrusted = await make_client(Scripted(), limits=limits, metrics=metrics)
    for address in ("203.0.113.1", "203.0.113.2"):
        headers = {"X-Forwarded-For": address}
        status = (await untrusted.post(CHAT, json=body(), headers=headers)).status
        assert status == (200 if address.endswith("1") else 429)  # both are 127.0.0.1


async def test_memory_limiter_windows() -> None:
    now = [120.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    assert await limiter.hit("k", 1, 2, 60) == Decision(True, 2, 1, 60.0)
    assert (await limiter.hit("k", 1, 2, 60)).allowed
    denied = await limiter.hit("k", 1, 2, 60)
    assert not denied.allowed and denied.remaining == 0
    now[0] = 150.0
    assert (await limiter.hit("k", 1, 2, 60)).reset == 30.0
    now[0] = 180.0  # a new window
    assert (await limiter.hit("k", 1, 2, 60)).allowed
    await limiter.charge("t", 50, 60)
    assert not (await limiter.hit("t", 0, 50, 60)).allowed
    assert (await limiter.acquire("c", 1)).allowed
    assert not (await limiter.acquire("c", 1)).allowed
    await limiter.release("c")
    assert (await limiter.acquire("c", 1)).allowed


def test_memory_admission_headers_and_settlement() -> None:
    """The memory backend's one-call admission, its headers' exact text, and the token
    reservation settled on the limiter's own clock (no refund once its window is over)."""
    now = [150.25]
    limiter = MemoryLimiter(clock=lambda: now[0])
    rule = Rule(rpm=3, tpm=100, concurrency=1)
    ticket = Ticket(limiter)
    limiter.admit_now(ticket, "key:a", rule)
    headers: CIMultiDict[str] = CIMultiDict()
    rate_headers(ticket, headers)
    assert dict(headers) == {
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "29.750s",
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "29.750s",
    }
    assert not limiter.acquire_now("c:key:a", 1).allowed  # its concurrency slot is held
    assert reserve_tokens_now(ticket, 40)
    now[0] = 170.0
    ticket.charge_now(25)  # 40 reserved, 25 used: 15 given back in the same window
    assert limiter.hit_now("t:key:a", 0, 100, 60).remaining == 75
    assert ticket.release_now() and limiter.acquire_now("c:key:a", 1).allowed
    limiter.release_now("c:key:a")
    late = Ticket(limiter)
    limiter.admit_now(late, "key:a", rule)
    assert reserve_tokens_now(late, 50)  # 75 + 50 in the window that ends at 180
    now[0] = 185.0
    limiter.release_now("c:key:a")
    other = Ticket(limiter)
    limiter.admit_now(other, "key:a", rule)
    assert reserve_tokens_now(other, 30)  # the new window's first 30
    late.charge_now(10)  # counted in the old window: the new one is not refunded
    assert limiter.hit_now("t:key:a", 0, 100, 60).remaining == 70


def test_memory_admission_counter_names_are_bounded() -> None:
    """The counter names kept per subject stay bounded (client addresses are subjects),
    and a subject whose names were dropped still counts into the same counters."""
    limiter = MemoryLimiter(clock=lambda: 30.0, names_kept=8)
    rule = Rule(rpm=2)
    limiter.admit_now(Ticket(limiter), "ip:first", rule)
    for number in range(20):
        limiter.admit_now(Ticket(limiter), f"ip:10.0.0.{number}", rule)
    assert len(limiter._names) <= 8
    limiter.admit_now(Ticket(limiter), "ip:first", rule)  # its second request of the minute
    with pytest.raises(RateLimitError):
        limiter.admit_now(Ticket(limiter), "ip:first", rule)


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "g4f.toml"
    path.write_text(
        'port = 8080\nmodel = "echo-1"\n'
        '[keys.alice]\nsha256 = "' + sha("a") + '"\nrpm = 5\n'
        "[limits.per_client]\nrpm = 10\n"
        '[limits.models."gpt-4o"]\ntpm = 1000\n'
    )
    config = AppConfig.load(environ={"G4F_CONFIG": str(path), "G4F_PORT": "9000"})
    assert config.port == 9000  # the environment wins over the file
    assert config.model == "echo-1"
    assert config.keys["alice"]["rpm"] == 5
    assert config.limits["models"]["gpt-4o"] == {"tpm": 1000}
    assert AppConfig.load(environ={}, config=path, port=7000).port == 7000
    check(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense = 1\n", "unknown setting"),
        ("port = \n", "config file"),
        ('[keys.a]\nsha256 = "abc"\n', "keys.a.sha256"),
        ("[limits.per_client]\nrpm = 0\n", "limits.per_client.rpm"),
        ("[limits.per_everyone]\nrpm = 1\n", "per_everyone"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        check(AppConfig.load(environ={}, config=path))


async def test_keys_new_prints_a_working_key(make_client: Any, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["keys", "new", "ci-bot"])
    assert result.exit_code == 0, result.output
    key = result.output.split("client): ", 1)[1].split()[0]
    lines = result.output.split("config file:", 1)[1]
    path = tmp_path / "keys.toml"
    path.write_text(lines)
    config = AppConfig.load(environ={}, config=path)
    assert config.keys["ci-bot"]["sha256"] == sha(key)
    client = await make_client(Scripted(), keys=config.keys)
    assert (await client.post(CHAT, json=body(), headers=bearer(key))).status == 200
    assert (await client.post(CHAT, json=body(), headers=bearer(key + "x"))).status == 401


async def test_logs_name_the_key_never_its_value(
    make_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await make_client(Scripted(), keys={"ci-bot": {"sha256": sha("v4lue-xyz")}})
    assert (await client.post(CHAT, json=body(), headers=bearer("v4lue-xyz"))).status == 200
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "key=ci-bot" in logged.replace("'", "") and "v4lue-xyz" not in logged


def test_a_bad_trusted_proxy_is_a_config_error_without_limits() -> None:
    # Conversations use the client address too, so the list is checked even with no limits.
    with pytest.raises(ConfigError, match=r"trusted_proxies.*not-an-ip"):
        check(AppConfig(trusted_proxies=["127.0.0.1", "not-an-ip"]))


async def test_limits_with_metrics_on_share_one_request_state(make_client: Any) -> None:
    """With metrics on, the metrics middleware makes the request's state and the limits
    admit it: the tokens are settled with the real count, the slot is given back (a
    concurrency of 1 passes request after request), the refusal's kind is counted and
    the tokens reach the metrics; a path the limits do not count is not counted."""
    client = await make_client(
        Scripted(usage=True),
        metrics=True,
        metrics_public=True,
        limits={"per_client": {"tpm": 30, "concurrency": 1}},
    )
    for used in (0, 13, 26):
        resp = await client.post(CHAT, json=body())
        assert resp.status == 200
        assert resp.headers["x-ratelimit-remaining-tokens"] == str(30 - used)
    assert (await client.get("/health")).status == 200
    assert "x-ratelimit-limit-tokens" not in (await client.get("/health")).headers
    await assert_429(await client.post(CHAT, json=body()), "tokens", 30)
    text = await (await client.get("/metrics")).text()
    assert 'g4f_rate_limited_total{kind="tpm"} 1.0' in text
    assert 'g4f_tokens_total{kind="prompt",provider="Echo"} 33.0' in text


@pytest.mark.parametrize("metrics", [False, True])
async def test_an_emulated_request_is_counted_once(make_client: Any, metrics: bool) -> None:
    """A request no model serves natively is admitted before routing finds that out and
    the turn takes the way with emulation: its model's limit counts it once, not twice,
    and it reserves its tokens once (what the first reserved is settled: the second sees
    the minute's budget nearly whole)."""
    client = await make_client(
        Plain([f"```json\n{CALL}\n```"]),
        emulate=["tools"],
        metrics=metrics,
        limits={"models": {"plain-1": {"rpm": 2}}, "per_client": {"tpm": 2100}},
    )
    for _ in range(2):
        resp = await client.post(CHAT, json=ask(tools=WEATHER))
        assert resp.status == 200, await resp.text()
        assert resp.headers["X-G4F-Emulated"] == "tools"
        assert int(resp.headers["x-ratelimit-remaining-tokens"]) > 1500
    await assert_429(await client.post(CHAT, json=ask(tools=WEATHER)), "requests", 2)


@ADMISSIONS
async def test_each_admission_way_is_the_one_installed(make_client: Any, metrics: bool) -> None:
    """The parametrized tests above run both ways only while each is installed as said."""
    from g4f_server.controls.wiring import ON_ADMIT

    client = await make_client(Scripted(), limits={"per_client": {"rpm": 1}}, metrics=metrics)
    app = client.server.app
    edge = next(
        route.handler.edge for route in app.router.routes() if hasattr(route.handler, "edge")
    )
    assert (ON_ADMIT in app) is metrics
    assert len(edge.inner) == (0 if metrics else 1)
