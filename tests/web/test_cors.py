"""CORS and the Host guard through the real server (preflights as browsers send them)."""

from __future__ import annotations

from typing import Any

from tests.fake_providers import Scripted

CHAT = "/v1/chat/completions"
BODY = {"model": "echo-1", "messages": [{"role": "user", "content": "hi"}]}
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_preflight_with_a_key_any_origin(make_client: Any) -> None:
    client = await make_client(Scripted(), api_key="k")
    origin = "https://app.example.com"
    resp = await client.options(CHAT, headers={"Origin": origin, **PREFLIGHT})
    assert resp.status == 204  # before the key check: browsers send no credentials
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    resp = await client.post(
        CHAT, json=BODY, headers={"Origin": origin, "Authorization": "Bearer k"}
    )
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    exposed = resp.headers["Access-Control-Expose-Headers"]
    assert "X-Request-Id" in exposed and "x-ratelimit-remaining-requests" in exposed
    # Streamed answers and errors carry them too.
    resp = await client.post(CHAT, json={**BODY, "stream": True}, headers={"Origin": origin})
    assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == origin
    resp = await client.post(
        CHAT,
        json={**BODY, "stream": True},
        headers={"Origin": origin, "Authorization": "Bearer k"},
    )
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == origin
    await resp.read()


async def test_without_a_key_only_loopback_origins(make_client: Any) -> None:
    client = await make_client(Scripted())
    for origin in ("http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000"):
        resp = await client.options(CHAT, headers={"Origin": origin, **PREFLIGHT})
        assert resp.status == 204, origin
        assert resp.headers["Access-Control-Allow-Origin"] == origin
    evil = "https://evil.example"
    resp = await client.options(CHAT, headers={"Origin": evil, **PREFLIGHT})
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    for origin in ("http://127.attacker.example", "http://127.0.0.1%00.evil.example", "null"):
        resp = await client.options(CHAT, headers={"Origin": origin, **PREFLIGHT})
        assert resp.status == 403, origin
        assert "Access-Control-Allow-Origin" not in resp.headers
    # A "simple" request needs no preflight: it is refused too, so a foreign page cannot
    # drive the gateway (and the logins uploaded to it) even without reading the answer.
    resp = await client.post(CHAT, data=b"{}", headers={"Origin": evil})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "origin_not_allowed"
    assert (await client.post(CHAT, json=BODY)).status == 200  # no Origin: not a browser


async def test_configured_origins(make_client: Any) -> None:
    client = await make_client(Scripted(), cors_origins=["https://ui.example.org"])
    ok = await client.options(CHAT, headers={"Origin": "https://ui.example.org", **PREFLIGHT})
    assert ok.status == 204
    other = await client.options(CHAT, headers={"Origin": "http://localhost:1", **PREFLIGHT})
    assert other.status == 403
    anyone = await make_client(Scripted(), cors_origins=["*"])
    resp = await anyone.options(CHAT, headers={"Origin": "https://x.example", **PREFLIGHT})
    assert resp.status == 204


async def test_host_guard_without_a_key(make_client: Any) -> None:
    client = await make_client(Scripted())
    resp = await client.get("/v1/models", headers={"Host": "attacker.example:1337"})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "host_not_allowed"
    for host in ("localhost:1337", "127.0.0.1", "127.3.4.5:1337", "[::1]:1337", "LOCALHOST"):
        assert (await client.get("/v1/models", headers={"Host": host})).status == 200, host
    # Issue 28: a name that merely starts like a loopback address is anyone's name (an
    # attacker points 127.attacker.example at 127.0.0.1); so are other tricks and no name.
    for host in (
        "127.attacker.example",
        "127.0.0.1.attacker.example:1337",
        "127.0.0.1%00.evil.example",
        "localhost.attacker.example",
        "app.localhost",
        "[::1%25eth0]",
        "",
    ):
        resp = await client.get("/v1/models", headers={"Host": host})
        assert resp.status == 403, host
        assert (await resp.json())["error"]["code"] == "host_not_allowed"
    # With a key, or bound to a public address, any Host is fine (the key protects it /
    # the operator chose to be reachable by other names).
    keyed = await make_client(Scripted(), api_key="k")
    headers = {"Host": "gateway.example", "Authorization": "Bearer k"}
    assert (await keyed.get("/v1/models", headers=headers)).status == 200
    public = await make_client(Scripted(), host="0.0.0.0")
    assert (await public.get("/v1/models", headers={"Host": "gateway.example"})).status == 200


async def test_own_origin_is_allowed_on_a_public_bind(make_client: Any) -> None:
    # The chat page served on a LAN address calls the API from that origin.
    client = await make_client(Scripted(), host="0.0.0.0")
    headers = {"Host": "192.168.1.5:1337", "Origin": "http://192.168.1.5:1337"}
    assert (await client.post(CHAT, json=BODY, headers=headers)).status == 200
    headers["Origin"] = "http://192.168.1.6:1337"
    assert (await client.post(CHAT, json=BODY, headers=headers)).status == 403
