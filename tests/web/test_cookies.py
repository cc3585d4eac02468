"""Cookie upload: JSON exports and HAR files, validation, storage, scoping, list and delete."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from g4f_server.controls.apikeys import KeyRing, key_hash
from tests.media_providers import CookieReader

FUTURE = time.time() + 86400


def export(domain: str = ".example.com", **cookies: str) -> list[dict[str, Any]]:
    return [
        {"domain": domain, "name": n, "value": v, "path": "/", "expirationDate": FUTURE}
        for n, v in (cookies or {"sid": "s3cret"}).items()
    ]


def har() -> dict[str, Any]:
    def header(name: str, value: str) -> dict[str, str]:
        return {"name": name, "value": value}

    return {
        "log": {
            "version": "1.2",
            "entries": [
                {
                    "request": {
                        "method": "GET",
                        "url": "https://copilot.example.com/c/api/start",
                        "headers": [header("Authorization", "Bearer tok-123")],
                        "cookies": [{"name": "anon", "value": "a1"}],
                    },
                    "response": {
                        "status": 200,
                        "cookies": [
                            {"name": "fresh", "value": "f1", "domain": ".example.com"},
                            {"name": "gone", "value": "", "expires": "2000-01-01T00:00:00Z"},
                        ],
                    },
                },
                {
                    "request": {
                        "url": "https://copilot.example.com/c/api/conversations",
                        "headers": [
                            header("authorization", "Bearer tok-456"),
                            header("X-UserIdentityType", "msa"),
                        ],
                        "cookies": [{"name": "anon", "value": "a2"}],
                    }
                },
                {"request": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    }


@pytest.fixture
def gateway(start_gateway: Any, tmp_path: Path) -> Any:
    async def start(**config: Any) -> str:
        return await start_gateway(
            plugins=[CookieReader(cookie_domains=("example.com",))],
            data_dir=str(tmp_path),
            **config,
        )

    return start


async def upload(
    base: str, *files: tuple[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = aiohttp.FormData()
    for name, content in files:
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        data.add_field("files", raw, filename=name, content_type="application/json")
    async with (
        aiohttp.ClientSession(headers=headers) as s,
        s.post(base + "/v1/upload_cookies", data=data) as resp,
    ):
        return resp.status, await resp.json()


async def seen_by_provider(base: str, hosts: str) -> dict[str, dict[str, str]]:
    body = {"model": "cookie-1", "messages": [{"role": "user", "content": hosts}]}
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + "/v1/chat/completions", json=body) as resp,
    ):
        return json.loads((await resp.json())["choices"][0]["message"]["content"])


async def listing(base: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(base + "/v1/cookies") as resp:
        assert resp.status == 200
        return (await resp.json())["data"]


async def test_json_export_is_stored_private_and_scoped(gateway: Any, tmp_path: Path) -> None:
    base = await gateway()
    status, body = await upload(
        base,
        ("cookies.json", export(sid="s3cret", theme="dark")),
        ("other.json", {"cookies": export("other.org", token="x")}),
    )
    assert status == 200, body
    assert body["data"][0] == {
        "filename": "cookies.json",
        "domains": ["example.com"],
        "cookies": 2,
        "access_token": False,
    }
    path = tmp_path / "cookies" / "example.com.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # The provider reads its own domain (and subdomains get the parent's cookies) ...
    seen = await seen_by_provider(base, "example.com www.example.com other.org")
    assert seen["example.com"] == {"sid": "s3cret", "theme": "dark"}
    assert seen["www.example.com"] == {"sid": "s3cret", "theme": "dark"}
    # ... but never another domain's.
    assert seen["other.org"] == {}
    # Listing shows names, never values.
    rows = await listing(base)
    assert [(r["domain"], r["names"]) for r in rows] == [
        ("example.com", ["sid", "theme"]),
        ("other.org", ["token"]),
    ]
    assert "s3cret" not in json.dumps(rows)
    # Nothing is served back as a file.
    async with aiohttp.ClientSession() as s, s.get(base + "/cookies/example.com.json") as r:
        assert r.status == 404


async def test_har_cookies_and_access_token(gateway: Any) -> None:
    base = await gateway()
    status, body = await upload(base, ("session.har", har()))
    assert status == 200, body
    assert body["data"][0]["access_token"] is True
    assert body["data"][0]["domains"] == ["copilot.example.com", "example.com"]
    seen = await seen_by_provider(base, "copilot.example.com")
    assert seen["copilot.example.com"] == {
        "fresh": "f1",  # from the response's Set-Cookie, on the parent domain
        "anon": "a2",  # later entries win
        "__g4f_access_token": "tok-456",
        "__g4f_identity_type": "msa",
    }


async def test_new_upload_replaces_a_domain(gateway: Any) -> None:
    base = await gateway()
    await upload(base, ("a.json", export(old="1", sid="1")))
    await upload(base, ("b.json", export(sid="2")))
    seen = await seen_by_provider(base, "example.com")
    assert seen["example.com"] == {"sid": "2"}


BAD_FILES = [
    (b"{not json", "not valid JSON"),
    ({"hello": "world"}, "expected a HAR file or a cookie export"),
    ({"cookies": "nope"}, "'cookies' must be a list"),
    ([1, 2], "cookie 0 is not an object"),
    ([{"name": "a", "value": "b"}], "cookie 0 has no 'domain'"),
    ([{"domain": "example.com", "name": "bad name", "value": "b"}], "invalid cookie name"),
    ([{"domain": "example.com", "name": "a", "value": "x\r\nSet-Cookie: y"}], "invalid value"),
    ([{"domain": "../../etc", "name": "a", "value": "b"}], "invalid domain"),
    ([{"domain": "com", "name": "a", "value": "b"}], "invalid domain"),
    ([{"domain": "example.com", "name": "a", "value": "b", "expirationDate": 1}], "no unexpired"),
    ([], "no unexpired cookies"),
    ({"log": {}}, "HAR file without log.entries"),
    ({"log": {"entries": [{"response": {}}]}}, "HAR entry 0 has no request.url"),
    ({"log": {"entries": [{"request": {"url": "https://a.example", "cookies": 5}}]}}, "list"),
]


@pytest.mark.parametrize(("content", "reason"), BAD_FILES)
async def test_malformed_files_are_rejected_with_a_reason(
    gateway: Any, tmp_path: Path, content: Any, reason: str
) -> None:
    base = await gateway()
    # A good file next to the bad one: nothing at all is written.
    status, body = await upload(base, ("good.json", export()), ("bad.json", content))
    assert status == 400, body
    assert body["error"]["code"] == "invalid_cookie_file"
    assert "'bad.json'" in body["error"]["message"] and reason in body["error"]["message"]
    assert await listing(base) == []
    assert list((tmp_path / "cookies").iterdir()) == []


async def test_upload_limits_and_shape(gateway: Any) -> None:
    base = await gateway(max_upload_size=2048)
    status, _ = await upload(base, ("big.json", export(sid="x" * 4000)))
    assert status == 413
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/upload_cookies", json=export()) as resp:
            assert resp.status == 400
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("note", "no files here")
        async with s.post(base + "/v1/upload_cookies", data=form) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["param"] == "files"


async def test_api_key_is_required_when_set(gateway: Any) -> None:
    base = await gateway(api_key="k-admin")
    status, body = await upload(base, ("c.json", export()))
    assert status == 401 and body["error"]["type"] == "authentication_error"
    status, _ = await upload(base, ("c.json", export()), headers={"g4f-api-key": "k-admin"})
    assert status == 200
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/v1/cookies") as resp:
            assert resp.status == 401
        async with s.delete(base + "/v1/cookies") as resp:
            assert resp.status == 401


async def test_delete_one_domain_or_all(gateway: Any) -> None:
    base = await gateway()
    await upload(base, ("c.json", export() + export("www.example.com", a="1")))
    async with aiohttp.ClientSession() as s:
        async with s.delete(base + "/v1/cookies/www.example.com") as resp:
            assert resp.status == 200 and (await resp.json())["deleted"] == 1
        async with s.delete(base + "/v1/cookies/www.example.com") as resp:
            assert resp.status == 404
        async with s.delete(base + "/v1/cookies/..%2F..%2Fetc") as resp:
            assert resp.status == 404
        assert [r["domain"] for r in await listing(base)] == ["example.com"]
        async with s.delete(base + "/v1/cookies") as resp:
            assert (await resp.json())["deleted"] == 1
    assert await listing(base) == []
    assert (await seen_by_provider(base, "example.com"))["example.com"] == {}


def har_of(hosts: list[str]) -> dict[str, Any]:
    """A HAR with one request (and its cookie) per host."""
    entries = [
        {"request": {"url": f"https://{h}/", "cookies": [{"name": "sid", "value": "v"}]}}
        for h in hosts
    ]
    return {"log": {"version": "1.2", "entries": entries}}


async def test_a_har_naming_too_many_domains_is_refused_whole(gateway: Any, tmp_path: Path) -> None:
    base = await gateway(cookie_max_upload_domains=50)
    hosts = [f"h{i}.example.com" for i in range(2000)]
    status, body = await upload(base, ("good.json", export()), ("big.har", har_of(hosts)))
    assert status == 413, body
    assert body["error"]["code"] == "too_many_cookie_domains"
    assert body["error"]["param"] == "files"
    assert "cookie_max_upload_domains" in body["error"]["message"]
    assert "2001" in body["error"]["message"]  # the good file's domain counts too
    assert await listing(base) == []
    assert not (tmp_path / "cookies").exists() or list((tmp_path / "cookies").iterdir()) == []
    status, body = await upload(base, ("ok.har", har_of(hosts[:50])))
    assert status == 200, body
    assert len(list((tmp_path / "cookies").iterdir())) == 50


async def test_the_total_of_stored_domains_is_capped(gateway: Any, tmp_path: Path) -> None:
    base = await gateway(cookie_max_domains=5)
    assert (await upload(base, ("a.har", har_of([f"a{i}.example.com" for i in range(3)]))))[
        0
    ] == 200
    # Replacing stored domains adds nothing: the same three again, plus two new ones, fit.
    again = [f"a{i}.example.com" for i in range(3)] + ["b0.example.com", "b1.example.com"]
    assert (await upload(base, ("b.har", har_of(again))))[0] == 200
    status, body = await upload(base, ("c.har", har_of(["c0.example.com"])))
    assert status == 413, body
    assert body["error"]["code"] == "too_many_cookie_domains"
    assert "keep 6 cookie domains (limit 5, cookie_max_domains)" in body["error"]["message"]
    assert len(await listing(base)) == 5
    assert not (tmp_path / "cookies" / "c0.example.com.json").exists()
    async with aiohttp.ClientSession() as s, s.delete(base + "/v1/cookies/b0.example.com"):
        pass
    assert (await upload(base, ("c.har", har_of(["c0.example.com"]))))[0] == 200


def test_cookie_caps_are_settings_with_environment_names() -> None:
    from g4f_server.config import AppConfig, ConfigError

    config = AppConfig.load({"G4F_COOKIE_MAX_DOMAINS": "7", "G4F_COOKIE_MAX_UPLOAD_DOMAINS": "3"})
    assert (config.cookie_max_domains, config.cookie_max_upload_domains) == (7, 3)
    with pytest.raises(ConfigError, match="G4F_COOKIE_MAX_DOMAINS"):
        AppConfig.load({"G4F_COOKIE_MAX_DOMAINS": "0"})


def test_cookie_caps_have_flags() -> None:
    import subprocess
    import sys

    for flag, setting in (
        ("--cookie-max-domains", "cookie_max_domains (G4F_COOKIE_MAX_DOMAINS)"),
        ("--cookie-max-upload-domains", "cookie_max_upload_domains"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "g4f_server", "api", flag, "0"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert out.returncode == 2
        assert f"{setting}" in out.stderr and "at least 1" in out.stderr, out.stderr


async def test_only_an_admin_key_manages_cookies(gateway: Any) -> None:
    """Cookies log the whole server into an account: a key limited to one model (or any
    key without admin = true) may not list, replace or delete them (issue 28 item 8)."""
    keys = {
        "user": {"sha256": key_hash("k-user"), "models": ["cookie-1"]},
        "ops": {"sha256": key_hash("k-ops"), "admin": True},
    }
    base = await gateway(api_key="k-single", keys=keys)
    status, body = await upload(base, ("c.json", export()), headers={"x-api-key": "k-user"})
    assert status == 403 and body["error"]["code"] == "admin_key_required"
    for admin in ("k-single", "k-ops"):
        status, _ = await upload(base, ("c.json", export()), headers={"x-api-key": admin})
        assert status == 200
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer k-user"}) as s:
        for method, path in (("GET", "/v1/cookies"), ("DELETE", "/v1/cookies"),
                             ("DELETE", "/v1/cookies/example.com")):  # fmt: skip
            async with s.request(method, base + path) as resp:
                assert resp.status == 403, (method, path)
                assert (await resp.json())["error"]["code"] == "admin_key_required"
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer k-ops"}) as s:
        async with s.get(base + "/v1/cookies") as resp:
            assert resp.status == 200 and (await resp.json())["data"]
        async with s.delete(base + "/v1/cookies") as resp:
            assert resp.status == 200 and (await resp.json())["deleted"] >= 1
    # The user's key still chats: only the shared state is out of its reach.
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer k-user"}) as s,
        s.post(
            base + "/v1/chat/completions",
            json={"model": "cookie-1", "messages": [{"role": "user", "content": "x.example.com"}]},
        ) as resp,
    ):
        assert resp.status == 200


def test_admin_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match=r"keys.ops.admin must be true or false"):
        KeyRing.build(None, {"ops": {"sha256": key_hash("k"), "admin": "yes"}})
