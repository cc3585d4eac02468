"""Server behaviour around the routes: disconnects, logging, OpenAPI, config, health."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from g4f_server.web.routes import UNVERSIONED
from tests.fake_providers import Endless, Scripted


async def test_client_disconnect_closes_the_provider_stream(
    start_gateway: Any, tmp_path: Any
) -> None:
    provider = Endless()
    base = await start_gateway(plugins=[provider], data_dir=str(tmp_path))
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            base + "/v1/chat/completions",
            json={
                "model": "echo-1",
                "messages": [{"role": "user", "content": "go"}],
                "stream": True,
            },
        )
        await resp.content.readline()
        await resp.content.readline()
        resp.close()  # hang up mid-stream
    await asyncio.wait_for(provider.closed.wait(), 5)
    sent = provider.sent
    await asyncio.sleep(0.1)
    assert provider.sent == sent  # nothing is produced for a client that is gone


async def test_each_chunk_reaches_the_client_before_the_next_exists(
    start_gateway: Any, tmp_path: Any
) -> None:
    from tests.fake_providers import Gated

    provider = Gated()
    base = await start_gateway(plugins=[provider], data_dir=str(tmp_path))
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            base + "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "stream": True},
        )

        async def until(text: str) -> None:
            while text.encode() not in await resp.content.readline():
                pass

        await asyncio.wait_for(until('"content":"first"'), 5)  # sent while the provider waits
        provider.release.set()
        await asyncio.wait_for(until('"content":" second"'), 5)
        await asyncio.wait_for(until("[DONE]"), 5)


async def test_hang_up_seen_as_write_error_is_a_quiet_499(tmp_path: Any) -> None:
    """Without handler cancellation the hang-up surfaces as ConnectionResetError on write."""
    from aiohttp import web

    provider = Endless()
    app = create_app(AppConfig(data_dir=tmp_path), plugins=[provider], load_entrypoints=False)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with capture_logs() as logs:
            async with aiohttp.ClientSession() as session:
                resp = await session.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={
                        "model": "echo-1",
                        "messages": [{"role": "user", "content": "go"}],
                        "stream": True,
                    },
                )
                await resp.content.readline()
                resp.close()
            await asyncio.wait_for(provider.closed.wait(), 5)
            for _ in range(50):
                if any(e["event"] == "request" for e in logs):
                    break
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert not [e for e in logs if e["log_level"] == "error"]
    assert [e["status"] for e in logs if e["event"] == "request"] == [499]


async def test_access_log_has_request_id_provider_model_and_no_content(make_client: Any) -> None:
    client = await make_client(Scripted())
    with capture_logs() as logs:
        resp = await client.post(
            "/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "my secret diary"}],
            },
            headers={"Authorization": "Bearer sk-user-key"},
        )
    assert resp.status == 200
    access = [entry for entry in logs if entry["event"] == "request"]
    assert access == [
        {
            "event": "request",
            "log_level": "info",
            "method": "POST",
            "path": "/v1/chat/completions",
            "status": 200,
            "provider": "Echo",
            "model": "echo-1",
            "attempts": 1,
            "ms": access[0]["ms"],
            "request_id": resp.headers["X-Request-Id"],
        }
    ]
    assert "secret diary" not in repr(logs) and "sk-user-key" not in repr(logs)


async def test_client_request_id_is_kept_and_reaches_the_provider(make_client: Any) -> None:
    spy = Scripted(name="Spy")
    client = await make_client(spy)
    with capture_logs() as logs:
        resp = await client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers={"X-Request-Id": "req-42"},
        )
    assert resp.headers["X-Request-Id"] == "req-42"
    assert spy.seen[0].request_id == "req-42"
    assert [e["request_id"] for e in logs if e["event"] == "request"] == ["req-42"]


async def test_invalid_client_request_id_is_replaced(make_client: Any) -> None:
    client = await make_client(Scripted())
    resp = await client.get("/health", headers={"X-Request-Id": "bad id\twith spaces"})
    assert resp.headers["X-Request-Id"] != "bad id\twith spaces"
    assert len(resp.headers["X-Request-Id"]) == 32


async def test_openapi_lists_every_route_and_docs_page_renders(make_client: Any) -> None:
    client = await make_client(Scripted())
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    aliases = {(m, p.replace("{model:.+}", "{model}")) for m, p, _ in UNVERSIONED}
    assert ("POST", "/chat/completions") in aliases and ("GET", "/models/{model}") in aliases
    for route in client.app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*"):  # "*": the catch-all that answers 404/405
            continue
        path = route.resource.canonical.replace("{model:.+}", "{model}")
        if (route.method, path) in aliases:
            assert (route.method, path) not in documented  # once, under /v1
            continue
        assert (route.method, path) in documented, (route.method, path)
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ChatRequest"
    )
    assert "ChatRequest" in spec["components"]["schemas"]
    for path, schema in [
        ("/v1/responses", "ResponsesRequest"),
        ("/v1/messages", "MessagesRequest"),
        ("/v1/messages/count_tokens", "CountTokensRequest"),
        ("/v1/completions", "CompletionRequest"),
    ]:
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"].endswith("/" + schema), path
        assert schema in spec["components"]["schemas"]
    assert {"get", "delete"} <= spec["paths"]["/v1/responses/{response_id}"].keys()
    resp = await client.get("/docs")
    page = await resp.text()
    assert "<rapi-doc" in page and "script-src 'self'" in resp.headers["Content-Security-Policy"]
    scripts = re.findall(r'src="(/docs/[^"]+)"', page)
    assert any(s.endswith("/vendor/rapidoc-min.js") for s in scripts)
    for src in scripts:  # the viewer and its loader are served, cached for good
        asset = await client.get(src)
        assert asset.status == 200 and "immutable" in asset.headers["Cache-Control"]
    licence = await client.get(scripts[0].rsplit("/vendor/", 1)[0] + "/vendor/LICENSE.rapidoc.txt")
    assert licence.status == 200 and "MIT" in await licence.text()
    # The summary is plain text, the description keeps the Markdown for the viewer.
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert "`" not in chat["summary"] and "`stream: true`" in chat["description"]


async def test_provider_detail_and_models_routes(make_client: Any) -> None:
    client = await make_client(Scripted())
    detail = await (await client.get("/v1/providers/echo")).json()
    assert (
        detail["id"] == "Echo" and detail["stream"] is True and detail["default_model"] == "echo-1"
    )
    missing = await client.get("/v1/providers/nobody")
    assert missing.status == 404
    models = await (await client.get("/api/Echo/models")).json()
    assert [m["id"] for m in models["data"]] == ["echo-1", "thinker", "plain"]
    assert models["data"][0]["aliases"] == ["gpt-4o-mini"]
    assert models["data"][0]["capabilities"] == ["chat", "tools", "vision"]


def test_config_precedence_flag_over_env_over_default() -> None:
    env = {"G4F_PORT": "9000", "G4F_API_KEY": "from-env", "G4F_TIMEOUT": "12", "G4F_DEBUG": "true"}
    config = AppConfig.load(environ=env, port=9100)
    assert config.port == 9100  # flag wins
    assert config.api_key == "from-env" and config.timeout == 12 and config.debug is True
    assert AppConfig.load(environ={}).port == 1337
    assert config.redacted()["api_key"] == "***"
    AppConfig.set_config(g4f_api_key="programmatic", model=None)
    try:
        assert AppConfig.load(environ=env).api_key == "programmatic"
        assert AppConfig.load(environ=env, api_key="flag").api_key == "flag"
    finally:
        AppConfig._overrides.clear()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"G4F_PORT": "not-a-port"}, "port (G4F_PORT) must be an integer, got 'not-a-port'"),
        ({"G4F_PORT": "70000"}, "port (G4F_PORT) must be at most 65535"),
        ({"G4F_TIMEOUT": "0"}, "timeout (G4F_TIMEOUT) must be greater than 0"),
        ({"G4F_TIMEOUT": "inf"}, "timeout (G4F_TIMEOUT) must be a number"),
        ({"G4F_DEBUG": "maybe"}, "debug (G4F_DEBUG) must be true or false"),
        ({"G4F_API_KEY": ""}, None),  # an empty string is a valid (if odd) value
    ],
)
def test_invalid_config_is_rejected_with_the_setting_named(
    env: dict[str, str], message: str | None
) -> None:
    from g4f_server.config import ConfigError

    if message is None:
        assert AppConfig.load(environ=env).api_key == ""
        return
    with pytest.raises(ConfigError) as caught:
        AppConfig.load(environ=env)
    assert str(caught.value).startswith(message)


def test_config_values_are_coerced_from_the_environment() -> None:
    env = {"G4F_DEBUG": "Yes", "G4F_PRIORITY": "A, B,,", "G4F_DATA_DIR": "/srv/g4f"}
    config = AppConfig.load(environ=env, workers="2")
    assert config.debug is True and config.priority == ["A", "B"] and config.workers == 2
    assert config.data_dir == Path("/srv/g4f") and config.redacted()["data_dir"] == "/srv/g4f"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]  # one config per server, never changed


def test_cli_reports_a_bad_setting_without_a_traceback() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "g4f_server", "api", "--port", "1"],
        env={**os.environ, "G4F_TIMEOUT": "soon"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "timeout (G4F_TIMEOUT) must be a number, got 'soon'" in out.stderr
    assert "Traceback" not in out.stderr


async def test_a_kernel_bug_is_a_500_with_request_id_and_no_internals(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    app = create_app(AppConfig(data_dir=tmp_path), plugins=[Scripted()], load_entrypoints=False)

    async def buggy(request: Any) -> Any:
        raise ZeroDivisionError("secret internals")

    app.router.add_get("/buggy", buggy)
    client = await aiohttp_client(app)
    with capture_logs() as logs:
        resp = await client.get("/buggy")
    assert resp.status == 500
    error = (await resp.json())["error"]
    assert error["type"] == "server_error"
    assert resp.headers["X-Request-Id"] in error["message"]
    assert "secret internals" not in error["message"]
    assert any(entry["event"] == "unhandled_error" for entry in logs)


async def test_provider_detail_reports_login_state(make_client: Any) -> None:
    from tests.fake_providers import LoginAware

    client = await make_client(LoginAware(), Scripted())
    detail = await (await client.get("/v1/providers/Login")).json()
    assert detail["auth_status"] == {"logged_in": False, "detail": "upload cookies to log in"}
    assert (await (await client.get("/v1/providers/Echo")).json())["auth_status"] is None


async def test_shared_upstream_session_keeps_no_cookies(
    start_gateway: Any, aiohttp_server: Any, tmp_path: Any
) -> None:
    """A cookie one user's upstream call receives must not ride along on the next call."""
    from aiohttp import web

    from tests.fake_providers import CookieProbe

    async def upstream(request: web.Request) -> web.Response:
        response = web.Response(text=request.headers.get("Cookie", "<none>"))
        response.set_cookie("session", "user-a-secret")
        return response

    upstream_app = web.Application()
    upstream_app.router.add_get("/", upstream)
    server = await aiohttp_server(upstream_app)
    base = await start_gateway(
        plugins=[CookieProbe(url=f"http://localhost:{server.port}/")], data_dir=str(tmp_path)
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            resp = await session.post(
                base + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
            )
            body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "<none>"


async def test_provider_error_text_is_not_logged(make_client: Any) -> None:
    from g4f_server import errors

    failing = Scripted(fail=errors.ProviderError("upstream said: my secret diary entry"))
    client = await make_client(failing)
    with capture_logs() as logs:
        resp = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        )
    assert "my secret diary entry" in (await resp.json())["error"]["message"]  # the client's
    assert "secret diary" not in repr(logs)
    assert any(e["event"] == "provider_failed" and e["status"] == 502 for e in logs)
