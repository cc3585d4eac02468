"""API key checks: every route but the documented open ones needs the key when one is set."""

from __future__ import annotations

import re
from typing import Any

import pytest

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from tests.fake_providers import Scripted

KEY = "s3cret-key"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Any) -> Any:
    app = create_app(
        AppConfig(api_key=KEY, data_dir=tmp_path), plugins=[Scripted()], load_entrypoints=False
    )
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    "path", ["/v1/models", "/v1/providers", "/openapi.json", "/api/Echo/models", "/nope"]
)
async def test_routes_need_the_key(client: Any, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 401
    error = (await resp.json())["error"]
    assert error == {
        "message": error["message"],
        "type": "authentication_error",
        "code": "invalid_api_key",
        "param": None,
    }
    assert (await client.get(path, headers={"Authorization": f"Bearer {KEY}"})).status in (200, 404)


async def test_health_is_open(client: Any) -> None:
    resp = await client.get("/health")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {KEY}"},
        {"g4f-api-key": KEY},
        {"Authorization": f"Bearer {KEY} pk_provider_key"},
    ],
)
async def test_accepted_key_forms(client: Any, headers: dict[str, str]) -> None:
    resp = await client.get("/v1/models", headers=headers)
    assert resp.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": KEY},
        {"g4f-api-key": KEY + "x"},
        {"Authorization": f"Basic {KEY}"},
    ],
)
async def test_rejected_key_forms(client: Any, headers: dict[str, str]) -> None:
    resp = await client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}]},
        headers=headers,
    )
    assert resp.status == 401


async def test_second_bearer_word_is_the_provider_key(aiohttp_client: Any, tmp_path: Any) -> None:
    """``Bearer <server key> <provider key>``: the provider receives the second word, as if
    sent in X-Provider-Key; an explicit X-Provider-Key (and a body api_key) wins."""
    echo = Scripted()
    app = create_app(
        AppConfig(api_key=KEY, data_dir=tmp_path), plugins=[echo], load_entrypoints=False
    )
    client = await aiohttp_client(app)
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}

    async def key_seen(headers: dict[str, str], **extra: Any) -> str | None:
        resp = await client.post("/v1/chat/completions", json={**body, **extra}, headers=headers)
        assert resp.status == 200, await resp.text()
        return echo.seen[-1].api_key

    bearer = {"Authorization": f"Bearer {KEY} pk-second-word"}
    assert await key_seen(bearer) == "pk-second-word"
    assert await key_seen({"Authorization": f"Bearer {KEY}"}) is None
    assert await key_seen({**bearer, "X-Provider-Key": "pk-header"}) == "pk-header"
    assert await key_seen(bearer, api_key="pk-body") == "pk-body"
    resp = await client.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY} pk-\u00e9"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "Authorization"


async def test_second_bearer_word_on_a_server_without_a_key(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    echo = Scripted()
    app = create_app(AppConfig(data_dir=tmp_path), plugins=[echo], load_entrypoints=False)
    client = await aiohttp_client(app)
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}
    for auth, seen in (("Bearer unused", None), ("Bearer unused pk-1", "pk-1")):
        resp = await client.post("/v1/chat/completions", json=body, headers={"Authorization": auth})
        assert resp.status == 200, await resp.text()
        assert echo.seen[-1].api_key == seen


# Exactly what docs/api.md lists as open without the key (besides CORS preflights).
OPEN_WITHOUT_KEY = {
    "/health",
    "/health/live",
    "/health/ready",
    "/status",  # the page only: its data, /v1/status, needs the key
    "/media/{filename}",
    "/",
    "/chat",
    "/chat/",
    "/gui/{version}/{path:.+}",
    "/docs",
    "/docs/{version}/{path:.+}",
}


@pytest.mark.parametrize("metrics_public", [False, True])
async def test_exactly_the_documented_routes_are_open(
    aiohttp_client: Any, tmp_path: Any, metrics_public: bool
) -> None:
    from g4f_server.web.routes import ROUTES, UNVERSIONED

    config = AppConfig(
        api_key=KEY, data_dir=tmp_path, gui=True, metrics=True, metrics_public=metrics_public
    )
    app = create_app(config, plugins=[Scripted()], load_entrypoints=False)
    client = await aiohttp_client(app)
    expected_open = OPEN_WITHOUT_KEY | ({"/metrics"} if metrics_public else set())
    opened = set()
    for method, path, _ in ROUTES + UNVERSIONED:  # the aliases without /v1 too
        url = re.sub(r"\{[^}]+\}", "x", path)  # every path parameter
        resp = await client.request(method, url, allow_redirects=False)
        if resp.status != 401:
            opened.add(path)
    assert opened == expected_open


def test_a_named_key_is_remembered_by_its_header_only_when_valid() -> None:
    """A named key's Authorization header, seen valid, names the key next time without
    parsing it; the single key (here the same text as a named key's) is never remembered
    that way, the other key headers still come first, and a wrong key never goes in."""
    import hashlib

    from aiohttp.test_utils import make_mocked_request

    from g4f_server import errors
    from g4f_server.controls.apikeys import KeyRing

    def sha(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    ring = KeyRing.build(KEY, {"team": {"sha256": sha("team-key")}, "same": {"sha256": sha(KEY)}})
    assert ring is not None

    def name(**headers: str) -> str:
        request = make_mocked_request("GET", "/v1/models", headers=headers)
        return ring.identify(request)

    for _ in range(2):
        assert name(Authorization="Bearer team-key") == "team"
        assert name(Authorization="Bearer team-key provider-key") == "team"
        assert name(Authorization=f"Bearer {KEY}") == "default"
        assert name(Authorization="Bearer team-key", **{"x-api-key": KEY}) == "default"
        # An empty key header is no key: the Authorization header's key counts.
        assert name(Authorization="Bearer team-key", **{"g4f-api-key": ""}) == "team"
        with pytest.raises(errors.AuthenticationError):  # a blank one is a blank key
            name(Authorization="Bearer team-key", **{"x-api-key": " "})
        with pytest.raises(errors.AuthenticationError):
            name(Authorization="Bearer wrong")
    assert set(ring._known_headers) == {"Bearer team-key", "Bearer team-key provider-key"}
