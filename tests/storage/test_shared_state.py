"""Shared state on a real Redis (``--state-url``): two gateways (A and B, each with its own
data folder, so nothing can pass through files) on one redis-server.

What one instance stores the other finds: conversations, stored responses, media,
cookies. Every key is under the prefix and has a TTL; the caps hold. Redis lost while
serving: 503 ``state_unavailable`` for what needs state, the rest served, recovery
without restart. Unreachable at start: a clear error without the password.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from g4f_server.app import create_app
from g4f_server.config import AppConfig, redact_url
from g4f_server.storage.interfaces import COOKIES
from g4f_server.storage.redis.state import StateStartupError
from g4f_server.testing import wait_until
from tests.fake_providers import Scripted
from tests.media_providers import Painter
from tests.redis_server import RedisServer
from tests.server_process import free_port

HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def pair(aiohttp_client: Any, tmp_path: Path, redis_server: RedisServer) -> Any:
    """``await pair(**config)`` -> (A, B, A's provider, B's provider)."""

    async def make(
        painter: dict[str, Any] | None = None, echo: dict[str, Any] | None = None, **config: Any
    ) -> tuple[TestClient, TestClient, Scripted, Scripted]:
        config.setdefault("state_url", redis_server.url)
        clients, echoes = [], []
        for name in ("a", "b"):
            provider = Scripted(**(echo or {}))
            app = create_app(
                AppConfig(data_dir=tmp_path / name, **config),
                plugins=[provider, Painter(**(painter or {}))],
                load_entrypoints=False,
            )
            clients.append(await aiohttp_client(app))
            echoes.append(provider)
        return clients[0], clients[1], echoes[0], echoes[1]

    return make


async def chat(client: TestClient, status: int = 200, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", HELLO)
    body.setdefault("model", "echo-1")
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_a_conversation_started_on_a_continues_on_b(pair: Any, tmp_path: Path) -> None:
    a, b, _, echo_b = await pair()
    await chat(a, conversation_id="c1")
    await chat(b, conversation_id="c1", messages=[{"role": "user", "content": "And now?"}])
    seen = echo_b.seen[-1]
    assert seen.conversation == {"turn": 1}  # A's provider state
    assert [m["content"] for m in seen.messages] == ["Hello there", "echo: Hello there", "And now?"]
    assert not (tmp_path / "a" / "conversations.sqlite3").exists()  # nothing on disk


async def test_a_stored_response_from_a_is_found_on_b(pair: Any) -> None:
    a, b, _, echo_b = await pair()
    resp = await a.post("/v1/responses", json={"model": "echo-1", "input": "Remember 42"})
    assert resp.status == 200, await resp.text()
    first = await resp.json()
    got = await b.get(f"/v1/responses/{first['id']}")
    assert got.status == 200 and (await got.json())["id"] == first["id"]
    body = {"model": "echo-1", "input": "What was it?", "previous_response_id": first["id"]}
    resp = await b.post("/v1/responses", json=body)
    assert resp.status == 200, await resp.text()
    assert echo_b.seen[-1].messages[0]["content"] == "Remember 42"
    assert (await b.delete(f"/v1/responses/{first['id']}")).status == 200
    assert (await a.get(f"/v1/responses/{first['id']}")).status == 404


async def test_an_image_made_on_a_is_served_by_b(pair: Any) -> None:
    a, b, _, _ = await pair()
    resp = await a.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "x"})
    assert resp.status == 200, await resp.text()
    path = "/media/" + (await resp.json())["data"][0]["url"].rsplit("/media/", 1)[1]
    got = await b.get(path)
    assert got.status == 200
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    data = await got.read()
    assert data.startswith(b"\x89PNG")
    again = await b.get(path, headers={"If-None-Match": got.headers["ETag"]})
    assert again.status == 304
    assert (await b.get("/media/0000000000-" + "0" * 32 + ".png")).status == 404
    assert (await b.get("/media/..%2Fsecret")).status == 404


async def test_cookies_uploaded_to_a_are_used_by_b(pair: Any) -> None:
    a, b, _, _ = await pair()
    export = [{"name": "sid", "value": "s3cret", "domain": ".example.com"}]
    form = aiohttp.FormData()
    form.add_field("files", json.dumps(export).encode(), filename="cookies.json")
    assert (await a.post("/v1/upload_cookies", data=form)).status == 200
    store_b = b.app[COOKIES]
    await wait_until(lambda: store_b.for_host("www.example.com") == {"sid": "s3cret"})
    listed = await (await b.get("/v1/cookies")).json()
    assert listed["data"][0]["domain"] == "example.com" and "s3cret" not in json.dumps(listed)
    assert (await b.delete("/v1/cookies/example.com")).status == 200
    await wait_until(lambda: a.app[COOKIES].for_host("example.com") == {})


async def test_the_cookie_domain_cap_counts_every_instance(pair: Any) -> None:
    """The cap is checked in Redis: B's upload counts what A stored, and is refused whole."""
    a, b, _, _ = await pair(cookie_max_domains=3)

    def form(*domains: str) -> aiohttp.FormData:
        export = [{"name": "sid", "value": "v", "domain": d} for d in domains]
        data = aiohttp.FormData()
        data.add_field("files", json.dumps(export).encode(), filename="c.json")
        return data

    assert (await a.post("/v1/upload_cookies", data=form("a.example", "b.example"))).status == 200
    resp = await b.post("/v1/upload_cookies", data=form("b.example", "c.example", "d.example"))
    assert resp.status == 413, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "too_many_cookie_domains" and "cookie_max_domains" in error["message"]
    await b.app[COOKIES].reload()
    assert [d["domain"] for d in b.app[COOKIES].summary()] == ["a.example", "b.example"]
    assert (await b.post("/v1/upload_cookies", data=form("b.example", "c.example"))).status == 200


async def test_every_key_is_under_the_prefix_and_expires(
    pair: Any, redis_server: RedisServer
) -> None:
    # Noisy 16x16 PNGs are ~800 bytes: each new one pushes the previous one out.
    big = {"noise": True, "side": 16}
    a, _, _, _ = await pair(big, state_prefix="gw1:", conversation_max=2, media_max_bytes=1024)
    for i in range(4):
        await chat(a, conversation_id=f"c{i}")
    await a.post("/v1/responses", json={"model": "echo-1", "input": "hi"})
    urls = []
    for _ in range(3):
        resp = await a.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "x"})
        assert resp.status == 200
        urls.append((await resp.json())["data"][0]["url"].rsplit("/media/", 1)[1])
    form = aiohttp.FormData()
    form.add_field(
        "files", b'[{"name": "n", "value": "v", "domain": "a.example"}]', filename="c.json"
    )
    assert (await a.post("/v1/upload_cookies", data=form)).status == 200
    r = redis_server.client()
    keys = sorted(k.decode() for k in r.keys("*"))
    assert keys and all(k.startswith("gw1:") for k in keys)
    assert all(r.ttl(k) > 0 for k in keys), {k: r.ttl(k) for k in keys}
    # The LRU cap: 2 conversation entries (each conversation has a state and a history).
    assert r.zcard("gw1:conv:index") == 2
    assert len([k for k in keys if k.startswith("gw1:conv:") and ":index" not in k]) == 2
    # The media bound: only the newest file fits; the books match what is stored.
    assert [k for k in keys if k.endswith(".png")] == [f"gw1:media:{urls[-1]}"]
    assert int(r.get("gw1:media:total")) == int(r.hget("gw1:media:sizes", urls[-1])) <= 1024
    assert (await a.get(f"/media/{urls[0]}")).status == 404


async def test_redis_lost_while_serving(pair: Any, redis_server: RedisServer) -> None:
    a, b, _, _ = await pair()
    await chat(a, conversation_id="c1")
    resp = await a.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "x"})
    media = "/media/" + (await resp.json())["data"][0]["url"].rsplit("/media/", 1)[1]
    redis_server.stop()

    error = (await chat(b, 503, conversation_id="c1"))["error"]
    assert error["code"] == "state_unavailable" and error["type"] == "server_error"
    assert (await b.get(media)).status == 503
    body = {"model": "echo-1", "input": "x", "previous_response_id": "resp_1"}
    assert (await b.post("/v1/responses", json=body)).status == 503
    # Requests that need no state are still served.
    assert (await chat(b))["choices"][0]["message"]["content"] == "echo: Hello there"
    b64 = {"model": "dall-e-3", "prompt": "x", "response_format": "b64_json"}
    assert (await b.post("/v1/images/generations", json=b64)).status == 200
    assert (await b.get("/health")).status == 200
    resp = await b.post(
        "/v1/chat/completions", json={"model": "echo-1", "messages": HELLO, "stream": True}
    )
    assert resp.status == 200 and b"[DONE]" in await resp.read()

    redis_server.start()  # same port, empty (no persistence): the server reconnects itself
    await chat(b, conversation_id="c2")
    await chat(a, conversation_id="c2", messages=[{"role": "user", "content": "again"}])


@pytest.mark.parametrize("stream", [False, True])
async def test_a_turn_that_cannot_be_stored_is_not_completed(
    pair: Any, redis_server: RedisServer, stream: bool
) -> None:
    """Redis goes away while the provider answers: the client never sees the turn as
    completed (the non-streamed answer is a 503, the stream ends with the error)."""
    a, _, echo, _ = await pair(echo={"delay": 0.3})
    body = {"model": "echo-1", "messages": HELLO, "conversation_id": "c1", "stream": stream}
    pending = asyncio.create_task(a.post("/v1/chat/completions", json=body))
    await wait_until(lambda: bool(echo.seen))  # history loaded, the provider is answering
    redis_server.stop()
    resp = await pending
    text = await resp.text()
    assert "state_unavailable" in text
    if stream:
        assert resp.status == 200 and '"finish_reason":"stop"' not in text.replace(" ", "")
    else:
        assert resp.status == 503


async def test_a_cache_hit_on_b_for_a_request_cached_by_a(
    pair: Any, redis_server: RedisServer
) -> None:
    a, b, echo_a, echo_b = await pair(cache_ttl=60)
    body = {"model": "echo-1", "messages": HELLO, "temperature": 0}
    first = await a.post("/v1/chat/completions", json=body)
    assert first.headers["X-G4F-Cache"] == "miss"
    hit = await b.post("/v1/chat/completions", json=body)
    assert hit.headers["X-G4F-Cache"] == "hit" and not echo_b.seen  # B's provider idle
    assert (await hit.json())["choices"][0]["message"]["content"] == "echo: Hello there"
    keys = redis_server.client().keys("g4f:cache:*")
    assert keys and all(redis_server.client().ttl(k) > 0 for k in keys)
    # Redis away: a miss answered by the provider, never an error.
    redis_server.stop()
    resp = await b.post("/v1/chat/completions", json=body)
    assert resp.status == 200 and resp.headers["X-G4F-Cache"] == "miss"
    assert len(echo_b.seen) == 1 and len(echo_a.seen) == 1


def _clear_of_a_window_edge(redis_server: RedisServer) -> None:
    """Counts are per minute on Redis's clock: start a counting test well inside one."""
    seconds, _ = redis_server.client().time()
    if seconds % 60 > 55:
        time.sleep(61 - seconds % 60)


async def test_a_limit_of_n_requests_is_shared_exactly(
    pair: Any, redis_server: RedisServer
) -> None:
    a, b, _, _ = await pair(limits={"per_client": {"rpm": 5}})
    _clear_of_a_window_edge(redis_server)

    async def status(client: TestClient) -> int:
        resp = await client.post(
            "/v1/chat/completions", json={"model": "echo-1", "messages": HELLO}
        )
        return resp.status

    # Eight at once, alternating instances: the check and the count are one script.
    statuses = await asyncio.gather(*(status(c) for c in [a, b] * 4))
    assert sorted(statuses) == [200] * 5 + [429] * 3
    resp = await b.post("/v1/chat/completions", json={"model": "echo-1", "messages": HELLO})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"
    keys = redis_server.client().keys("g4f:limit:*")
    assert keys and all(redis_server.client().ttl(k) > 0 for k in keys)


async def test_a_concurrency_limit_is_shared(pair: Any, redis_server: RedisServer) -> None:
    a, b, _, _ = await pair(echo={"delay": 0.5}, limits={"per_client": {"concurrency": 1}})
    body = {"model": "echo-1", "messages": HELLO}
    slow = asyncio.create_task(a.post("/v1/chat/completions", json=body))
    await wait_until(lambda: redis_server.client().zcard("g4f:slots:c:ip:127.0.0.1") == 1)
    refused = await b.post("/v1/chat/completions", json=body)
    assert refused.status == 429
    assert (await slow).status == 200
    assert redis_server.client().zcard("g4f:slots:c:ip:127.0.0.1") == 0  # given back
    assert (await b.post("/v1/chat/completions", json=body)).status == 200


@pytest.mark.parametrize("fail_closed", [False, True])
async def test_limits_while_redis_is_away(
    pair: Any, redis_server: RedisServer, fail_closed: bool
) -> None:
    a, _, _, _ = await pair(limits={"per_client": {"rpm": 100}}, limits_fail_closed=fail_closed)
    await chat(a)
    redis_server.stop()
    if fail_closed:
        assert (await chat(a, 503))["error"]["code"] == "state_unavailable"
    else:  # the default: admitted uncounted
        await chat(a)
    redis_server.start()
    await chat(a)


async def test_unreachable_redis_at_start_is_a_clear_error(tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    app = create_app(AppConfig(data_dir=tmp_path, state_url=url), load_entrypoints=False)
    runner = web.AppRunner(app)
    with pytest.raises(StateStartupError) as caught:
        await runner.setup()
    await runner.cleanup()
    message = str(caught.value)
    assert redact_url(url) in message and "hunter2" not in message
    assert "G4F_STATE_URL" in message


def test_unreachable_redis_at_start_exits_1(tmp_path: Path) -> None:
    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "G4F_DATA_DIR": str(tmp_path)}
    args = ["api", "--port", str(free_port()), "--load-plugins", "none", "--state-url", url]
    done = subprocess.run(
        [sys.executable, "-m", "g4f_server", *args], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 1
    err = done.stderr.decode()
    assert f"redis://user:***@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/0" in err
    assert "hunter2" not in err and "Traceback" not in err


async def test_password_from_g4f_state_password(aiohttp_client: Any, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password="pw-1").start()
    try:
        echo = Scripted()
        url = f"redis://127.0.0.1:{server.port}/0"
        config = AppConfig(data_dir=tmp_path, state_url=url, state_password="pw-1")
        assert config.redacted()["state_password"] == "***"
        client = await aiohttp_client(create_app(config, plugins=[echo], load_entrypoints=False))
        await chat(client, conversation_id="c1")
        await chat(client, conversation_id="c1")
        assert echo.seen[-1].conversation == {"turn": 1}
    finally:
        server.stop()


def test_the_embedded_default_never_imports_redis(tmp_path: Path) -> None:
    code = (
        "import sys; from g4f_server.app import create_app; from g4f_server.config import "
        f"AppConfig; create_app(AppConfig(data_dir={str(tmp_path)!r})); "
        "assert 'redis' not in sys.modules, 'redis imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_redact_url() -> None:
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("rediss://u:pw@h/0") == "rediss://u:***@h/0"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
