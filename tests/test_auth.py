"""API key checks: every route but /health needs the key when one is configured."""

from __future__ import annotations

from typing import Any

import pytest

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from tests.providers import Scripted

KEY = "s3cret-key"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Any) -> Any:
    app = create_app(
        AppConfig(api_key=KEY, data_dir=tmp_path), plugins=[Scripted()], load_entrypoints=False
    )
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    "path", ["/v1/models", "/v1/providers", "/openapi.json", "/docs", "/api/Echo/models", "/nope"]
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
