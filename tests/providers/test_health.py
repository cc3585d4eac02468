"""Live provider health (providers/health.py, probes.py): what real calls and probes say,
the statuses /v1/providers shows, routing around a provider that is down, /health/ready
and /v1/status.

The emulator tests run the Pollinations plugin against its own upstream emulator on
127.0.0.1: "down" is the emulator's port closed (connection refused), "back" a fresh
emulator on the same port.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from g4f_server import errors
from g4f_server.app import create_app
from g4f_server.config import AppConfig
from g4f_server.provider import ModelInfo
from g4f_server.providers.health import DEGRADED_BELOW, Vitals
from g4f_server.providers.probes import PROBE_PROMPT, PROBER
from g4f_server.providers.registry import REGISTRY
from tests.fake_providers import Probed, Scripted
from tests.server_process import offline_env

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
INTERVAL = 1.0  # the probe interval of the emulator tests
# Scheduling slack on a loaded 2-core machine: a probe that starts on time and fails at
# once (connection refused) is seen within the interval plus this.
SLACK = 0.5


def _emulator_module() -> Any:
    # The plugin's own conftest loads it under this name; the same module either way.
    name = "g4f_server_pollinations_tests_emulator"
    if name not in sys.modules:
        path = PLUGINS / "pollinations/tests/emulator.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


class Upstream:
    """The Pollinations emulator on a fixed port, which can go down and come back."""

    def __init__(self, aiohttp_server: Callable[..., Awaitable[Any]]) -> None:
        self._make = aiohttp_server
        self.server: Any = None
        self.emulator: Any = None
        self.port = 0

    async def up(self) -> None:
        self.emulator = _emulator_module().Emulator()
        kwargs = {"port": self.port} if self.port else {}
        self.server = await self._make(self.emulator.app, host="127.0.0.1", **kwargs)
        self.port = self.server.port

    async def down(self) -> None:
        await self.server.close()

    def chats(self) -> int:
        return len(self.emulator.seen("chat")) + len(self.emulator.seen("legacy-text"))


@pytest.fixture
async def upstream(aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Upstream]:
    from g4f_server_pollinations.config import settings

    up = Upstream(aiohttp_server)
    await up.up()
    base = f"http://127.0.0.1:{up.port}"
    monkeypatch.setenv("POLLINATIONS_TEXT_URL", f"{base}/legacy-text")
    monkeypatch.setenv("POLLINATIONS_IMAGE_URL", f"{base}/legacy-image")
    monkeypatch.setenv("POLLINATIONS_GEN_URL", f"{base}/gen")
    monkeypatch.delenv("POLLINATIONS_API_KEY", raising=False)
    monkeypatch.setenv("POLLINATIONS_MODELS_TIMEOUT", "3")
    monkeypatch.setenv("POLLINATIONS_ANON_TEXT_INTERVAL", "0")
    monkeypatch.setenv("POLLINATIONS_ANON_IMAGE_INTERVAL", "0")
    settings.cache_clear()
    yield up
    settings.cache_clear()


async def _gateway(aiohttp_server: Any, tmp_path: Path, *plugins: object, **config: Any) -> Any:
    """The gateway serving on 127.0.0.1 (its app at ``server.app``)."""
    app = create_app(
        AppConfig(data_dir=tmp_path, **config), plugins=list(plugins), load_entrypoints=False
    )
    return await aiohttp_server(app, host="127.0.0.1")


async def _provider(http: aiohttp.ClientSession, server: Any, name: str) -> dict[str, Any]:
    async with http.get(server.make_url(f"/v1/providers/{name}")) as resp:
        assert resp.status == 200
        return await resp.json()


async def _until_status(
    http: aiohttp.ClientSession,
    server: Any,
    name: str,
    status: str,
    timeout: float,
    *,
    probed: bool = False,
) -> float:
    """Seconds until /v1/providers/{name} shows ``status`` (``probed``: from a call or
    probe, not the model listing); fails after ``timeout``."""
    started = time.monotonic()
    while True:
        row = await _provider(http, server, name)
        if row["status"] == status and (row["checked_at"] or not probed):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{name} not {status} within {timeout:g}s")
        await asyncio.sleep(0.02)


async def _ready(http: aiohttp.ClientSession, server: Any) -> int:
    async with http.get(server.make_url("/health/ready")) as resp:
        return resp.status


# --- through the emulator ----------------------------------------------------------------


async def test_down_within_one_interval_back_after_it_returns_and_ready_follows(
    upstream: Upstream, aiohttp_server: Any, tmp_path: Path
) -> None:
    import g4f_server_pollinations

    server = await _gateway(
        aiohttp_server, tmp_path, g4f_server_pollinations, probe_interval=INTERVAL
    )
    async with aiohttp.ClientSession() as http:
        await _until_status(http, server, "Pollinations", "working", INTERVAL, probed=True)
        row = await _provider(http, server, "Pollinations")
        assert row["working"] is True and row["checked_at"] and row["last_success_at"]
        assert row["success_rate"] == 1.0 and row["latency_p50_ms"] > 0
        assert upstream.chats() >= 1  # the default probe: a real one-token chat
        probe = upstream.emulator.requests[-1]
        assert probe.json["messages"] == [{"role": "user", "content": PROBE_PROMPT}]
        assert await _ready(http, server) == 200

        await upstream.down()
        took = await _until_status(http, server, "Pollinations", "down", INTERVAL + SLACK)
        assert took <= INTERVAL + SLACK
        row = await _provider(http, server, "Pollinations")
        assert row["working"] is False and row["last_error"] in ("provider_error", "upstream_error")
        assert row["health"]["state"] == "open"  # the cooldown: routing skips it
        assert await _ready(http, server) == 503
        async with http.get(server.make_url("/health/ready")) as resp:
            assert await resp.json() == {"status": "not_ready", "chat_providers": []}
        async with http.get(server.make_url("/health")) as resp:  # keeps its meaning
            assert resp.status == 200 and (await resp.json())["providers_working"] == 0

        await upstream.up()  # the same port again
        took = await _until_status(http, server, "Pollinations", "working", INTERVAL + SLACK)
        assert (await _provider(http, server, "Pollinations"))["health"]["state"] == "closed"
        assert await _ready(http, server) == 200


async def test_routing_skips_the_down_provider_before_trying_it(
    upstream: Upstream, aiohttp_server: Any, tmp_path: Path
) -> None:
    import g4f_server_pollinations

    backup = Scripted(name="Backup", models=[ModelInfo("openai", frozenset({"chat"}))])
    server = await _gateway(
        aiohttp_server,
        tmp_path,
        g4f_server_pollinations,
        backup,
        probe_interval=INTERVAL,
        priority=["Pollinations", "Backup"],
    )
    body = {"model": "openai", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        await _until_status(http, server, "Pollinations", "working", INTERVAL, probed=True)
        async with http.post(server.make_url("/v1/chat/completions"), json=body) as resp:
            assert resp.status == 200 and resp.headers["X-G4F-Provider"] == "Pollinations"

        await upstream.down()
        await _until_status(http, server, "Pollinations", "down", INTERVAL + SLACK)
        seen = len(backup.seen)
        for _ in range(3):
            async with http.post(server.make_url("/v1/chat/completions"), json=body) as resp:
                assert resp.status == 200
                # Not tried and failed over: skipped (one attempt, Backup's).
                assert resp.headers["X-G4F-Provider"] == "Backup"
                assert resp.headers["X-G4F-Attempts"] == "1"
        assert len(backup.seen) == seen + 3
        assert await _ready(http, server) == 200  # Backup still answers

        await upstream.up()
        await _until_status(http, server, "Pollinations", "working", INTERVAL + SLACK)
        async with http.post(server.make_url("/v1/chat/completions"), json=body) as resp:
            assert resp.headers["X-G4F-Provider"] == "Pollinations"
        assert upstream.chats() >= 1


async def test_passive_health_from_real_requests_without_probes(
    upstream: Upstream, aiohttp_server: Any, tmp_path: Path
) -> None:
    import g4f_server_pollinations

    server = await _gateway(aiohttp_server, tmp_path, g4f_server_pollinations)
    body = {"model": "openai", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        row = await _provider(http, server, "Pollinations")
        # Before any call: what the model listing says.
        assert (row["status"], row["working"], row["checked_at"]) == ("working", True, None)
        assert row["success_rate"] is None and row["latency_p50_ms"] is None
        for _ in range(2):
            async with http.post(server.make_url("/v1/chat/completions"), json=body) as resp:
                assert resp.status == 200
        row = await _provider(http, server, "Pollinations")
        assert row["success_rate"] == 1.0 and row["latency_p50_ms"] > 0
        assert row["requests_per_minute"] > 0 and row["last_success_at"]
        assert upstream.chats() == 2  # no probe was sent

        upstream.emulator.fail("chat", 500)
        upstream.emulator.fail("legacy-text", 500)
        async with http.post(server.make_url("/v1/chat/completions"), json=body) as resp:
            assert resp.status >= 500
        row = await _provider(http, server, "Pollinations")
        # One failed request: degraded (not down: that takes a failed probe or the
        # cooldown), and not working.
        assert (row["status"], row["working"]) == ("degraded", False)
        assert row["success_rate"] == pytest.approx(2 / 3, abs=0.001)
        assert row["last_error"] and row["last_error_at"]
        assert await _ready(http, server) == 200
        for _ in range(2):  # three in a row: the cooldown opens, and that is down
            async with http.post(server.make_url("/v1/chat/completions"), json=body):
                pass
        assert (await _provider(http, server, "Pollinations"))["status"] == "down"
        assert await _ready(http, server) == 503


# --- the probe hook, the scheduler and the status data -----------------------------------


async def test_probe_hook_never_two_in_flight_and_needs_auth(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    slow = Probed(name="Slow", probe_delay=0.15)
    server = await _gateway(aiohttp_server, tmp_path, slow, probe_interval=0.2)
    prober = server.app[PROBER]
    entry = server.app[REGISTRY].get("Slow")
    for _ in range(20):  # on-demand checks meanwhile get the one in flight, if any
        assert prober.check(entry) is prober.check(entry)
        await asyncio.sleep(0.05)
    assert slow.probes >= 4 and slow.most_in_flight == 1
    assert entry.status == "working" and entry.vitals.latency_p50_ms() >= 150

    slow.probe_fail = errors.ProviderAuthError("log in first")
    slow.probe_delay = 0.0
    await prober.check(entry)
    assert await prober.check(entry) is not None
    assert entry.status == "needs_auth" and entry.working is False
    assert entry.health.state() == "closed"  # a login is not the provider's health


async def test_probe_results_and_recent_errors_in_v1_status(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    good = Probed(name="Good")
    bad = Probed(name="Bad", probe_fail=errors.ProviderError("upstream says no"))
    plain = Scripted(name="Plain", fail=errors.ProviderTimeoutError("slow"))
    server = await _gateway(aiohttp_server, tmp_path, good, bad, plain, api_key="sk-test")
    results = await server.app[PROBER].check_all()
    assert results["Good"] is None and results["Bad"] is not None
    assert results["Plain"] is not None  # the default probe: a one-token chat, failed
    assert plain.seen[-1].messages[0]["content"]
    key = {"Authorization": "Bearer sk-test"}
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/v1/status")) as resp:
            assert resp.status == 401  # behind the key like the API
        async with http.get(server.make_url("/status")) as resp:
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        async with http.get(server.make_url("/v1/status"), headers=key) as resp:
            data = await resp.json()
    statuses = {p["provider"]: p["status"] for p in data["providers"]}
    assert statuses == {"Good": "working", "Bad": "down", "Plain": "down"}
    assert data["ready"] is True and data["probe_interval"] == 0
    codes = {(e["provider"], e["code"], e["probe"]) for e in data["recent_errors"]}
    assert codes == {("Bad", "provider_error", True), ("Plain", "upstream_timeout", True)}


# --- the numbers ---------------------------------------------------------------------------


def test_vitals_rate_median_window_and_statuses() -> None:
    now = [1000.0]
    vitals = Vitals(clock=lambda: now[0])
    assert vitals.status(listed=True, fallback=False, cooling=False) == "working"
    assert vitals.status(listed=True, fallback=True, cooling=False) == "degraded"
    assert vitals.status(listed=False, fallback=False, cooling=False) == "down"
    for seconds in (0.1, 0.3, 0.2, 0.4):
        vitals.ok(seconds)
    assert vitals.latency_p50_ms() == 250.0 and vitals.success_rate() == 1.0
    vitals.failed(errors.ProviderError("x"))
    assert vitals.success_rate() == 0.8 and vitals.demoted()
    assert vitals.status(listed=True, fallback=False, cooling=False) == "degraded"
    assert vitals.status(listed=True, fallback=False, cooling=True) == "down"
    now[0] += 61
    assert not vitals.demoted()  # a failure a minute old no longer sends it last
    for _ in range(5):
        vitals.failed(errors.ProviderError("x"))
    vitals.ok(0.5)
    assert vitals.success_rate() == pytest.approx(5 / 11) and DEGRADED_BELOW > 5 / 11
    assert vitals.status(listed=True, fallback=False, cooling=False) == "degraded"
    now[0] += 901  # the window holds the last 15 minutes only
    assert vitals.success_rate() is None and vitals.latency_p50_ms() is None
    assert vitals.status(listed=True, fallback=False, cooling=False) == "working"


def test_requests_per_minute_slides_over_two_buckets() -> None:
    now = [60 * 100.0]
    vitals = Vitals(clock=lambda: now[0])
    for _ in range(30):
        vitals.ok(0.1)
    vitals.ok(0.1, probe=True)  # probes are not requests
    assert vitals.requests_per_minute() == 30
    now[0] += 90  # half-way through the next minute: half of the previous one counts
    assert vitals.requests_per_minute() == 15
    now[0] += 60
    assert vitals.requests_per_minute() == 0


# --- g4f-server providers --check ----------------------------------------------------------


async def _check_command(env: dict[str, str], *flags: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "g4f_server", "providers", "--check", *flags,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_providers_check_answers_which_provider_works(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The installed plugins: Pollinations on its emulator, Copilot on a port nobody
    listens on (offline, `providers` alone would call it working)."""
    base = f"http://127.0.0.1:{upstream.port}"
    env = offline_env(
        str(tmp_path),
        POLLINATIONS_TEXT_URL=f"{base}/legacy-text",
        POLLINATIONS_IMAGE_URL=f"{base}/legacy-image",
        POLLINATIONS_GEN_URL=f"{base}/gen",
        POLLINATIONS_ANON_TEXT_INTERVAL="0",
        G4F_LOAD_PLUGINS="pollinations,copilot",
    )
    code, out = await _check_command(env)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["PROVIDER", "CHECK", "STATUS", "LATENCY", "ERROR"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["Pollinations"].split()[1:3] == ["pass", "working"]
    assert rows["Pollinations"].split()[4] == "ms"
    assert rows["Copilot"].split()[1:3] == ["FAIL", "down"]
    assert upstream.chats() == 1  # one probe, a real chat

    code, out = await _check_command(env, "--json")
    by_name = {row["provider"]: row for row in json.loads(out)}
    assert by_name["Pollinations"]["check"] == "pass" and by_name["Copilot"]["error"]

    await upstream.down()  # nothing works: exit code 1
    code, out = await _check_command(env)
    assert code == 1 and "pass" not in out
