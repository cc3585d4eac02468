"""The routing table through the real server and both plugins' emulators: the contract's
tool, vision and JSON examples with gpt-4o answered by Pollinations while Copilot (first
in priority here) is installed; public names; provider aliases; the config's table."""

from __future__ import annotations

import base64
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import g4f_server_copilot
import g4f_server_pollinations
from g4f_server import errors
from g4f_server.providers.cooldown import ProviderHealth
from g4f_server.providers.health import DEMOTED_FOR
from g4f_server.providers.model_table import ModelTable, Target
from g4f_server.providers.registry import REGISTRY
from tests.fake_providers import Scripted

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def _emulator_module(plugin: str) -> Any:
    # The plugins' own conftests load them under these names; the same module either way.
    name = f"g4f_server_{plugin}_tests_emulator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PLUGINS / plugin / "tests/emulator.py")
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.fixture
async def emulators(aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    from g4f_server_pollinations.config import settings

    polli = _emulator_module("pollinations").Emulator()
    base = str((await aiohttp_server(polli.app, host="127.0.0.1")).make_url("")).rstrip("/")
    monkeypatch.setenv("POLLINATIONS_TEXT_URL", f"{base}/legacy-text")
    monkeypatch.setenv("POLLINATIONS_IMAGE_URL", f"{base}/legacy-image")
    monkeypatch.setenv("POLLINATIONS_GEN_URL", f"{base}/gen")
    monkeypatch.delenv("POLLINATIONS_API_KEY", raising=False)
    monkeypatch.setenv("POLLINATIONS_ANON_TEXT_INTERVAL", "0")
    monkeypatch.setenv("POLLINATIONS_ANON_IMAGE_INTERVAL", "0")
    copilot = _emulator_module("copilot").CopilotEmulator()
    copilot.base = str((await aiohttp_server(copilot.app())).make_url("")).rstrip("/")
    monkeypatch.setenv("COPILOT_URL", copilot.base)
    monkeypatch.setenv("COPILOT_START_TIMEOUT", "3")
    monkeypatch.setenv("COPILOT_FIRST_EVENT_TIMEOUT", "0.5")
    monkeypatch.setenv("COPILOT_IDLE_TIMEOUT", "0.5")
    monkeypatch.delenv("COPILOT_TOKEN", raising=False)
    settings.cache_clear()
    yield polli, copilot
    settings.cache_clear()


@pytest.fixture
async def gateway(emulators: Any, start_gateway: Any, tmp_path: Path) -> str:
    # Copilot first: every answer Pollinations gives below is a capability or failover
    # decision, not the default order.
    return await start_gateway(
        plugins=[g4f_server_copilot, g4f_server_pollinations],
        data_dir=str(tmp_path),
        priority=["Copilot", "Pollinations"],
    )


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.json(), resp.headers


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


TOOLS_EXAMPLE = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get current weather",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string", "description": "City name"}},
                    "required": ["location"],
                },
            },
        }
    ],
}
VISION_EXAMPLE = {
    "model": "gpt-4o",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's in this image?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
                },
            ],
        }
    ],
}
JSON_EXAMPLE = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "Generate a JSON object with user info"}],
    "response_format": {"type": "json_object"},
}


async def test_plain_gpt4o_goes_to_the_first_provider(gateway: str) -> None:
    status, body, headers = await post(
        gateway + "/v1/chat/completions",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 200, body
    assert headers["X-G4F-Provider"] == "Copilot"


async def test_tool_example_skips_the_tool_less_provider(gateway: str, emulators: Any) -> None:
    status, body, headers = await post(gateway + "/v1/chat/completions", TOOLS_EXAMPLE)
    assert status == 200, body
    assert headers["X-G4F-Provider"] == "Pollinations"
    assert headers["X-G4F-Attempts"] == "1"  # Copilot was never tried: it has no tools
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert emulators[0].last("chat").json["model"] == "openai"


async def test_vision_example_fails_over_from_copilot(gateway: str) -> None:
    # Copilot lists vision but needs a login for it: it fails before its first byte and
    # the next target answers.
    status, body, headers = await post(gateway + "/v1/chat/completions", VISION_EXAMPLE)
    assert status == 200, body
    assert headers["X-G4F-Provider"] == "Pollinations"
    assert headers["X-G4F-Attempts"] == "2"
    assert "image" in body["choices"][0]["message"]["content"]


async def test_json_example_goes_to_a_model_that_honours_it(gateway: str) -> None:
    status, body, headers = await post(gateway + "/v1/chat/completions", JSON_EXAMPLE)
    assert status == 200, body
    assert headers["X-G4F-Provider"] == "Pollinations"
    assert body["choices"][0]["message"]["content"] == '{"answer": 42}'


async def test_none_capable_names_what_is_missing(gateway: str) -> None:
    status, error, _ = await post(
        gateway + "/v1/chat/completions", {**TOOLS_EXAMPLE, "model": "Copilot:Copilot"}
    )
    assert status == 400
    assert error["error"]["code"] == "unsupported_capability"
    assert "tools" in error["error"]["message"]


async def test_pollinations_answers_to_its_gpt4free_name(gateway: str) -> None:
    status, body, headers = await post(
        gateway + "/v1/chat/completions",
        {"provider": "PollinationsAI", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 200, body
    assert headers["X-G4F-Provider"] == "Pollinations"
    status, info = await get(gateway + "/v1/providers/PollinationsAI")
    assert status == 200 and info["id"] == "Pollinations"
    assert info["aliases"] == ["PollinationsAI"]
    status, listing = await get(gateway + "/v1/providers")
    assert next(p for p in listing["data"] if p["id"] == "Pollinations")["aliases"] == [
        "PollinationsAI"
    ]
    status, _ = await get(gateway + "/api/PollinationsAI/models")
    assert status == 200


async def test_public_names_are_listed_and_echoed(gateway: str) -> None:
    status, listing = await get(gateway + "/v1/models")
    assert status == 200
    by_id = {m["id"]: m for m in listing["data"]}
    gpt4o = by_id["gpt-4o"]
    assert gpt4o["public"] is True
    assert gpt4o["providers"] == ["Copilot", "Pollinations"]
    assert {"chat", "tools", "vision", "json_schema"} <= set(gpt4o["capabilities"])
    assert "openai" in by_id and "claude-*" not in by_id  # provider models, never globs
    for name in ("gpt-4o", "claude-sonnet-4-5-20250929", "gpt-4.1-nano", "openai"):
        status, model = await get(gateway + f"/v1/models/{name}")
        assert status == 200 and model["id"] == name
    status, _ = await get(gateway + "/v1/models/no-such-model")
    assert status == 404


async def test_claude_names_reach_a_provider(gateway: str) -> None:
    status, body, headers = await post(
        gateway + "/v1/chat/completions",
        {"model": "claude-sonnet-4-5-20250929", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 200, body
    assert headers["X-G4F-Provider"] == "Copilot"


async def test_configured_table_order_and_failover(make_client: Any) -> None:
    down = Scripted(name="Down", fail=errors.ProviderError("upstream down"))
    up = Scripted(name="Up")
    table = {
        "house-model": ["Down:plain", "Up:thinker"],
        "team-*": "Up",
        "gpt-4o": "Up:plain",
        "thinker": "Down:plain",  # a listed id: the table does not apply to it
    }
    client = await make_client(down, up, models=table)
    resp = await client.post(
        "/v1/chat/completions",
        json={"model": "house-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert resp.status == 200
    assert resp.headers["X-G4F-Provider"] == "Up" and resp.headers["X-G4F-Attempts"] == "2"
    assert down.seen[-1].model == "plain" and up.seen[-1].model == "thinker"
    resp = await client.post(
        "/v1/chat/completions",
        json={"model": "team-alpha", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert resp.status == 200 and up.seen[-1].model == "echo-1"  # its default model
    # A model id a provider lists is never shadowed by the table.
    resp = await client.post(
        "/v1/chat/completions",
        json={"model": "thinker", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert resp.status == 200 and resp.headers["X-G4F-Provider"] == "Up"
    assert up.seen[-1].model == "thinker"
    # The configured table replaces the built-in one: gpt-4o is only Up:plain, no tools.
    resp = await client.post(
        "/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": TOOLS_EXAMPLE["tools"],
        },
    )
    assert resp.status == 400
    message = (await resp.json())["error"]["message"]
    assert "gpt-4o" in message and "Up:plain lacks tools" in message


def test_table_parsing() -> None:
    table = ModelTable.build({"a": ["P:m", "Q"], "b-*": "*"})
    assert table.lookup("A") == (Target("P", "m"), Target("Q"))
    assert table.lookup("b-1") == (Target(None),)
    assert table.lookup("c") is None
    assert ModelTable.build({}).lookup("gpt-4o") == (Target(None),)
    with pytest.raises(ValueError, match=r"models\.x"):
        ModelTable.build({"x": []})
    with pytest.raises(ValueError, match="provider name"):
        ModelTable.build({"x": [":m"]})


async def test_cooldown_then_one_probe(make_client: Any) -> None:
    flaky = Scripted(name="Flaky", priority=1, fail=errors.ProviderError("upstream down"))
    steady = Scripted(name="Steady", priority=2)
    client = await make_client(flaky, steady)
    entry = client.server.app[REGISTRY].get("Flaky")
    health = entry.health
    body = {"model": "plain", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):
        resp = await client.post("/v1/chat/completions", json=body)
        assert resp.status == 200 and resp.headers["X-G4F-Attempts"] == "2"
        # A provider whose last call failed goes last for a while (test_health.py); that
        # while is over here, so Flaky is tried first again.
        entry.vitals.checked_at -= DEMOTED_FOR
    info = await (await client.get("/v1/providers/Flaky")).json()
    assert info["health"]["state"] == "open"
    assert info["health"]["failures"] == {"provider_error": 3}
    assert 0 < info["health"]["retry_in"] <= 30
    tried = len(flaky.seen)
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.headers["X-G4F-Provider"] == "Steady" and resp.headers["X-G4F-Attempts"] == "1"
    assert len(flaky.seen) == tried  # skipped while cooling down
    # A provider named explicitly is tried anyway (the client asked for it).
    resp = await client.post("/v1/chat/completions", json={**body, "provider": "Flaky"})
    assert resp.status == 502
    health.open_until = health.clock() - 1  # the cooldown is over: half-open
    entry.vitals.checked_at -= DEMOTED_FOR
    assert (await (await client.get("/v1/providers/Flaky")).json())["health"][
        "state"
    ] == "half_open"
    flaky.fail = None  # it has recovered: the one probe succeeds and closes the circuit
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.headers["X-G4F-Provider"] == "Flaky"
    assert (await (await client.get("/v1/providers/Flaky")).json())["health"]["state"] == "closed"


def test_failed_probe_opens_again_and_auth_errors_do_not_count() -> None:
    now = [0.0]
    health = ProviderHealth(clock=lambda: now[0])
    for _ in range(3):
        health.failed(errors.ProviderAuthError("log in"))
    assert health.state() == "closed"
    for _ in range(3):
        health.failed(errors.ProviderError("down"))
    assert health.state() == "open" and not health.available()
    now[0] = 31.0
    assert health.available() and not health.available()  # one probe at a time
    health.failed(errors.ProviderError("still down"))
    assert health.state() == "open"
    now[0] = 62.0
    assert health.available()
    health.succeeded()
    assert health.state() == "closed" and health.available()


async def test_public_names_reach_only_providers_that_opt_in(make_client: Any) -> None:
    """Installing a third-party plugin does not make it a target for gpt-4o: the built-in
    table's "*" is the providers with ProviderInfo.public_names (the built-in plugins'
    stand-ins here), and with none of them, gpt-4o is not found. Its own ids still route,
    and an operator's table may name it."""
    third = Scripted(name="Third", public_names=False)
    client = await make_client(third)
    hi = [{"role": "user", "content": "hi"}]
    refused = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": hi})
    assert refused.status == 404 and not third.seen
    own = await client.post("/v1/chat/completions", json={"model": "plain", "messages": hi})
    assert own.status == 200 and len(third.seen) == 1
    builtin = Scripted(name="Builtin", priority=200)
    client = await make_client(third, builtin)
    reply = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": hi})
    assert reply.status == 200 and reply.headers["X-G4F-Provider"] == "Builtin"
