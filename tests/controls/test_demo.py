"""Demo mode (--demo): every restriction it adds, over HTTP, and its per-client limit.
The page's banner and the limit message in a browser are in test_gui_browser.py."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from g4f_server.config import AppConfig
from tests.fake_providers import Scripted
from tests.media_providers import Painter

CHAT = {"model": "plain", "messages": [{"role": "user", "content": "hi"}]}


async def demo_client(make_client: Any, **config: Any) -> Any:
    return await make_client(Scripted(), Painter(), demo=True, **config)


def assert_demo_refusal(status: int, body: dict[str, Any]) -> None:
    assert status == 403
    error = body["error"]
    assert error["code"] == "demo_mode" and error["type"] == "permission_error"
    assert "public demo" in error["message"]


def test_demo_turns_the_page_on_and_request_proxies_off() -> None:
    config = AppConfig(demo=True, allow_request_proxy=True)
    assert config.gui is True and config.allow_request_proxy is False
    assert AppConfig.load({"G4F_DEMO": "yes"}).gui is True
    assert AppConfig().demo is False


def test_demo_adds_a_per_client_limit_unless_the_operator_set_one() -> None:
    assert AppConfig(demo=True).limits == {"per_client": {"rpm": 20}}
    assert AppConfig.load({"G4F_DEMO": "1", "G4F_DEMO_RPM": "5"}).limits["per_client"] == {"rpm": 5}
    own = {"per_client": {"rpm": 100, "concurrency": 2}, "per_key": {"rpm": 9}}
    assert AppConfig(demo=True, limits=own).limits == own
    assert AppConfig(demo=True, limits={"per_key": {"rpm": 9}}).limits == {
        "per_key": {"rpm": 9},
        "per_client": {"rpm": 20},
    }
    assert AppConfig().limits == {}


async def test_the_page_shows_the_demo_banner(make_client: Any) -> None:
    client = await demo_client(make_client)
    page = await (await client.get("/")).text()
    assert 'data-demo="1"' in page and 'id="demo-banner"' in page


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/upload_cookies"),
        ("GET", "/v1/cookies"),
        ("DELETE", "/v1/cookies"),
        ("DELETE", "/v1/cookies/.example.com"),
    ],
)
async def test_cookie_routes_are_refused(make_client: Any, method: str, path: str) -> None:
    client = await demo_client(make_client)
    data = aiohttp.FormData()
    data.add_field("files", b"[]", filename="cookies.json")
    resp = await client.request(method, path, data=data if method == "POST" else None)
    assert_demo_refusal(resp.status, await resp.json())


async def test_cookie_routes_work_without_demo(make_client: Any) -> None:
    client = await make_client(Scripted(), gui=True)
    assert (await client.get("/v1/cookies")).status == 200


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/chat/completions", {**CHAT, "api_key": "pk-visitor"}, {}),
        ("/v1/images/generations", {"prompt": "a cat", "api_key": "pk-visitor"}, {}),
        ("/v1/chat/completions", CHAT, {"X-Provider-Key": "pk-visitor"}),
        ("/v1/chat/completions", CHAT, {"Authorization": "Bearer server-key pk-visitor"}),
        ("/v1/chat/completions", {**CHAT, "proxy": "http://127.0.0.1:9"}, {}),
    ],
)
async def test_provider_keys_and_proxy_are_refused(
    make_client: Any, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    client = await demo_client(make_client)
    resp = await client.post(path, json=body, headers=headers)
    assert_demo_refusal(resp.status, await resp.json())


async def test_a_plain_request_is_answered(make_client: Any) -> None:
    client = await demo_client(make_client)
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == "echo: hi"


async def test_requests_are_limited_per_client(make_client: Any) -> None:
    client = await demo_client(make_client, demo_rpm=2, trusted_proxies=["127.0.0.1"])
    for _ in range(2):
        assert (await client.post("/v1/chat/completions", json=CHAT)).status == 200
    resp = await client.post("/v1/chat/completions", json=CHAT)
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    error = (await resp.json())["error"]
    assert error["type"] == "rate_limit_error"
    assert "2 requests per minute" in error["message"]
    # The page, its files and the health check are not counted.
    for path in ("/", "/chat/", "/health"):
        assert (await client.get(path)).status == 200
    # Behind a trusted reverse proxy, each visitor is the address the proxy wrote.
    other = {"X-Forwarded-For": "203.0.113.9"}
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=other)).status == 200
