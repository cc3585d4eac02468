"""Two real gateway processes (A and B) on one real Redis, with the providers' emulators
behind them, and the shipped ``deploy/nginx.conf`` run by Debian's nginx in front.

The emulators run in the test's event loop, so the gateways are started from a thread
(they list the emulators' models before they answer /health).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.redis_server import RedisServer
from tests.server_process import free_port, server_process

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _emulator_module(plugin: str) -> Any:
    """A plugin's emulator, under the name its conftest gives it (loaded once)."""
    name = f"g4f_server_{plugin}_tests_emulator"
    if name not in sys.modules:
        path = ROOT / "plugins" / plugin / "tests" / "emulator.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


class Cluster:
    def __init__(self, redis: RedisServer, pollinations: Any, copilot: Any) -> None:
        self.redis, self.pollinations, self.copilot = redis, pollinations, copilot
        self.bases: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, data: Path) -> dict[str, str]:
        """A gateway's environment: its own data folder (only Redis is shared)."""
        polli = self.pollinations.base
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(data.parent),
            "G4F_DATA_DIR": str(data),
            "G4F_STATE_URL": self.redis.url,
            "G4F_STARTUP_TIMEOUT": "5",
            "POLLINATIONS_TEXT_URL": f"{polli}/legacy-text",
            "POLLINATIONS_IMAGE_URL": f"{polli}/legacy-image",
            "POLLINATIONS_GEN_URL": f"{polli}/gen",
            "POLLINATIONS_ANON_TEXT_INTERVAL": "0",
            "POLLINATIONS_ANON_IMAGE_INTERVAL": "0",
            "COPILOT_URL": self.copilot.base,
            "COPILOT_FIRST_EVENT_TIMEOUT": "2",
            "COPILOT_IDLE_TIMEOUT": "2",
            # One model limited, so the other tests are not: 3 a minute, shared.
            "G4F_LIMITS": json.dumps({"models": {"openai-fast": {"rpm": 3}}}),
            "G4F_CACHE_TTL": "60",  # only deterministic requests (temperature 0) use it
        }

    async def start(self, stack: contextlib.AsyncExitStack, folder: Path, **extra: str) -> None:
        """Gateways A and B (``bases``), stopped when ``stack`` closes; ``extra`` is
        added to their environment."""
        for name in ("a", "b"):
            server = server_process(env=self.env(folder / name) | extra)
            proc, base = await asyncio.to_thread(server.__enter__)
            stack.push_async_callback(asyncio.to_thread, server.__exit__, None, None, None)
            self.bases.append(base)
            self.procs.append(proc)


@pytest.fixture
async def emulated(aiohttp_server: Callable[..., Any], redis_server: RedisServer) -> Cluster:
    """The emulators and Redis, no gateway yet."""
    polli = _emulator_module("pollinations").Emulator()
    polli.base = str((await aiohttp_server(polli.app, host="127.0.0.1")).make_url("")).rstrip("/")
    copilot = _emulator_module("copilot").CopilotEmulator()
    copilot.base = str((await aiohttp_server(copilot.app())).make_url("")).rstrip("/")
    return Cluster(redis_server, polli, copilot)


@pytest.fixture
async def cluster(emulated: Cluster, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with contextlib.AsyncExitStack() as stack:
        await emulated.start(stack, tmp_path)
        yield emulated


async def call(method: str, url: str, status: int = 200, **kw: Any) -> Any:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kw) as resp:
        body = await resp.read()
        assert resp.status == status, body
        return json.loads(body) if resp.content_type == "application/json" else body


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_two_instances_share_their_state(cluster: Cluster) -> None:
    a, b = cluster.bases
    # A conversation started on A continues on B: B's upstream gets A's turn.
    body = {"model": "openai", "messages": user("My name is Ada."), "conversation_id": "c1"}
    await call("POST", a + "/v1/chat/completions", json=body)
    body["messages"] = user("What is my name?")
    reply = await call("POST", b + "/v1/chat/completions", json=body)
    assert reply["choices"][0]["message"]["content"] == "Echo: What is my name?"
    sent = [m["content"] for m in cluster.pollinations.last("chat").json["messages"]]
    assert sent == ["My name is Ada.", "Echo: My name is Ada.", "What is my name?"]

    # A previous_response_id from A works on B.
    first = await call("POST", a + "/v1/responses", json={"model": "openai", "input": "Hi A"})
    body = {"model": "openai", "input": "Hi B", "previous_response_id": first["id"]}
    await call("POST", b + "/v1/responses", json=body)
    sent = [m["content"] for m in cluster.pollinations.last("chat").json["messages"]]
    assert sent[0] == "Hi A" and sent[-1] == "Hi B"

    # An image made on A is served by B.
    made = await call("POST", a + "/v1/images/generations", json={"model": "flux", "prompt": "c"})
    name = made["data"][0]["url"].rsplit("/media/", 1)[1]
    assert await call("GET", f"{b}/media/{name}") == _emulator_module("pollinations").png()

    # A cache hit on B for a request A answered (and cached).
    body = {"model": "openai", "messages": user("cache me"), "temperature": 0}
    await call("POST", a + "/v1/chat/completions", json=body)
    asked = len(cluster.pollinations.seen("chat"))
    async with (
        aiohttp.ClientSession() as http,
        http.post(b + "/v1/chat/completions", json=body) as resp,
    ):
        assert resp.headers["X-G4F-Cache"] == "hit"
        assert (await resp.json())["choices"][0]["message"]["content"] == "Echo: cache me"
    assert len(cluster.pollinations.seen("chat")) == asked  # the upstream was not asked

    # Cookies uploaded to A are used by B's provider.
    export = [{"name": "MUID", "value": "abc", "domain": ".microsoft.com"}]
    form = aiohttp.FormData()
    form.add_field("files", json.dumps(export).encode(), filename="cookies.json")
    await call("POST", a + "/v1/upload_cookies", data=form)
    for _ in range(100):  # B's copy follows A's notice within milliseconds
        listed = await call("GET", b + "/v1/cookies")
        if listed["data"]:
            break
        await asyncio.sleep(0.02)
    body = {"model": "Copilot", "messages": user("Hi")}
    await call("POST", b + "/v1/chat/completions", json=body)
    assert "MUID=abc" in cluster.copilot.sockets[-1]["headers"]["Cookie"]


async def test_a_model_limit_is_shared_exactly(cluster: Cluster) -> None:
    seconds, _ = cluster.redis.client().time()
    if seconds % 60 > 50:  # the count is per minute on Redis's clock
        await asyncio.sleep(61 - seconds % 60)
    a, b = cluster.bases
    body = {"model": "openai-fast", "messages": user("count me")}
    for base in (a, b, a):
        await call("POST", base + "/v1/chat/completions", json=body)
    error = await call("POST", b + "/v1/chat/completions", 429, json=body)
    assert error["error"]["code"] == "rate_limit_exceeded"
    await call("POST", b + "/v1/chat/completions", json={**body, "model": "openai"})


async def test_redis_killed_mid_run_and_restarted(cluster: Cluster) -> None:
    a, b = cluster.bases
    body = {"model": "openai", "messages": user("one"), "conversation_id": "k1"}
    await call("POST", a + "/v1/chat/completions", json=body)
    cluster.redis.stop()
    error = await call("POST", b + "/v1/chat/completions", 503, json=body)
    assert error["error"]["code"] == "state_unavailable"
    plain = {"model": "openai", "messages": user("no state needed")}
    await call("POST", b + "/v1/chat/completions", json=plain)  # still served
    cluster.redis.start()
    body["conversation_id"] = "k2"  # Redis came back empty (no persistence in this test)
    await call("POST", b + "/v1/chat/completions", json=body)
    body["messages"] = user("two")
    await call("POST", a + "/v1/chat/completions", json=body)
    sent = [m["content"] for m in cluster.pollinations.last("chat").json["messages"]]
    assert sent == ["one", "Echo: one", "two"]


async def test_workers_share_the_state(cluster: Cluster, tmp_path: Path) -> None:
    """``--workers 2`` on Redis: each request on a new connection (the kernel spreads
    them over both workers); the conversation goes on whichever worker answers."""
    server = server_process("--workers", "2", env=cluster.env(tmp_path / "w"))
    _, base = await asyncio.to_thread(server.__enter__)
    try:
        body: dict[str, Any] = {"model": "openai", "conversation_id": "w1"}
        for n in range(6):
            body["messages"] = user(f"turn {n}")
            fresh = aiohttp.TCPConnector(force_close=True)
            async with (
                aiohttp.ClientSession(connector=fresh) as http,
                http.post(base + "/v1/chat/completions", json=body) as resp,
            ):
                assert resp.status == 200, await resp.text()
        sent = [m["content"] for m in cluster.pollinations.last("chat").json["messages"]]
        assert sent[::2] == [f"turn {n}" for n in range(6)]
    finally:
        await asyncio.to_thread(server.__exit__, None, None, None)


def _nginx_conf(folder: Path, port: int, upstreams: list[str]) -> Path:
    """The shipped file with this test's addresses: the two upstream servers and the
    listen port are substituted, nothing else changes."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    for name, base in zip(("gateway-a:1337", "gateway-b:1337"), upstreams, strict=True):
        assert f"server {name}" in text
        text = text.replace(f"server {name}", f"server {base.removeprefix('http://')}")
    assert "listen 8080;" in text
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    conf = folder / "nginx.conf"
    conf.write_text(text)
    return conf


@contextlib.contextmanager
def nginx(folder: Path, upstreams: list[str]) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = _nginx_conf(folder, port, upstreams)
    globals_ = f"daemon off; pid {folder}/nginx.pid; error_log {folder}/error.log;"
    if os.geteuid() == 0:
        globals_ += " user root;"  # the workers can use the test's private folder
    proc = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(conf), "-g", globals_],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert proc.poll() is None, "nginx exited"
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError("nginx did not answer")


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (.ci/run installs it)")
async def test_shipped_nginx_conf_streams_chunk_by_chunk(cluster: Cluster, tmp_path: Path) -> None:
    with nginx(tmp_path / "nginx", cluster.bases) as (proc, front):
        await _wait_for(front + "/health", proc)
        # Both instances answer behind it, and they share the conversation.
        body = {"model": "openai", "messages": user("first"), "conversation_id": "n1"}
        for text in ("first", "second", "third", "fourth"):
            body["messages"] = user(text)
            await call("POST", front + "/v1/chat/completions", json=body)
        sent = [m["content"] for m in cluster.pollinations.last("chat").json["messages"]]
        assert sent[0] == "first" and sent[-1] == "fourth" and len(sent) == 7

        # The emulator holds the answer after its first content chunk: that chunk must
        # reach the client through nginx before the rest exists.
        emu = cluster.pollinations
        emu.stall_seconds = 10.0
        emu.proceed.clear()
        emu.fail("chat", "gated", times=1)
        stream = {"model": "openai", "messages": user("stream through nginx"), "stream": True}
        async with (
            aiohttp.ClientSession() as http,
            http.post(front + "/v1/chat/completions", json=stream) as resp,
        ):
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            text = ""
            async for line in resp.content:
                if line.startswith(b"data: {"):
                    chunk = json.loads(line[6:])
                    text += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
                if text:
                    break
            assert text == "Echo:" and not emu.proceed.is_set()  # the held chunk arrived
            emu.proceed.set()
            rest = (await resp.read()).decode()
        assert rest.rstrip().endswith("data: [DONE]")
        assert "stream through nginx" in text + "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in rest.splitlines()
            if line.startswith("data: {") and json.loads(line[6:])["choices"]
        )


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())


def _gateway_env(nginx_address: str) -> dict[str, str]:
    """The shipped gateways' environment as compose gives it with no variable set
    (``${NAME:-default}`` is the default), nginx's compose address replaced by the
    test's; the state URL is the test's Redis (``Cluster.env``)."""
    compose = _compose()
    nginx = compose["services"]["nginx"]
    address = nginx["networks"]["g4f"]["ipv4_address"]
    env = {}
    for name, value in compose["services"]["gateway-a"]["environment"].items():
        value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        env[name] = value.replace(address, nginx_address)
    env.pop("G4F_STATE_URL")
    return env


async def visit(source: str, method: str, url: str, status: int = 200, **kw: Any) -> Any:
    """A request from the local address ``source`` (any of 127.0.0.0/8 on Linux): a
    visitor of its own as nginx sees it."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.request(method, url, **kw) as resp,
    ):
        body = await resp.read()
        assert resp.status == status, body
        return json.loads(body) if resp.content_type == "application/json" else body


def test_the_shipped_compose_file_is_safe_by_default() -> None:
    compose = _compose()
    # Published on this machine only while no key is required.
    assert compose["services"]["nginx"]["ports"] == ["127.0.0.1:8080:8080"]
    env = compose["services"]["gateway-b"]["environment"]  # the same anchor as A
    assert (
        env["G4F_TRUSTED_PROXIES"]
        == compose["services"]["nginx"]["networks"]["g4f"]["ipv4_address"]
    )
    assert env["G4F_API_KEY"] == "${G4F_API_KEY:-}"


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (.ci/run installs it)")
async def test_visitors_behind_the_shipped_nginx_are_told_apart(
    emulated: Cluster, tmp_path: Path
) -> None:
    """The shipped compose environment with its demo line turned on, behind the shipped
    nginx: visitor A (127.0.0.2) and visitor B (127.0.0.3) share neither a conversation
    id nor the per-client demo limit, even when B writes A's address into
    X-Forwarded-For; both gateways answer them in turn."""
    env = _gateway_env("127.0.0.1") | {"G4F_DEMO": "true", "G4F_DEMO_RPM": "3"}
    a, b = "127.0.0.2", "127.0.0.3"
    async with contextlib.AsyncExitStack() as stack:
        await emulated.start(stack, tmp_path, **env)
        with nginx(tmp_path / "nginx", emulated.bases) as (proc, front):
            await _wait_for(front + "/health", proc)
            chat = front + "/v1/chat/completions"
            body = {"model": "openai", "messages": user("My PIN is 4711."), "conversation_id": "c"}
            await visit(a, "POST", chat, json=body)  # A: 1
            body["messages"] = user("What is my PIN?")
            spoofed = {"X-Forwarded-For": a}
            await visit(b, "POST", chat, json=body, headers=spoofed)  # B: 1
            sent = [m["content"] for m in emulated.pollinations.last("chat").json["messages"]]
            assert sent == ["What is my PIN?"]  # A's turn stayed A's
            await visit(a, "POST", chat, json=body)  # A: 2, on the other gateway
            sent = [m["content"] for m in emulated.pollinations.last("chat").json["messages"]]
            assert sent == ["My PIN is 4711.", "Echo: My PIN is 4711.", "What is my PIN?"]

            plain = {"model": "openai", "messages": user("hello")}
            await visit(a, "POST", chat, json=plain)  # A: 3
            error = await visit(a, "POST", chat, 429, json=plain)
            assert error["error"]["code"] == "rate_limit_exceeded"
            await visit(b, "POST", chat, json=plain, headers=spoofed)  # B: 2, not A's limit


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (.ci/run installs it)")
async def test_a_killed_instance_fails_no_request_that_never_reached_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Gateway A is killed (SIGKILL) between requests, while nginx holds idle keep-alive
    connections to it: every later request, POSTs included, is answered by B. Then B
    too: nginx's own 502, and its 413, are JSON in each protocol's error shape."""
    with nginx(tmp_path / "nginx", cluster.bases) as (proc, front):
        await _wait_for(front + "/health", proc)
        body = {"model": "openai", "messages": user("hi")}
        async with aiohttp.ClientSession() as http:
            for _ in range(20):  # keep-alive connections to both, in every nginx worker
                async with http.post(front + "/v1/chat/completions", json=body) as resp:
                    assert resp.status == 200
            cluster.procs[0].kill()
            await asyncio.to_thread(cluster.procs[0].wait)
            failed = []

            async def one(n: int) -> None:
                async with http.post(front + "/v1/chat/completions", json=body) as resp:
                    if resp.status != 200:
                        failed.append((n, resp.status, await resp.text()))

            for n in range(20):
                await one(n)
            await asyncio.gather(*(one(n) for n in range(40)))
            assert failed == []

            # nginx's own errors, in the shape of each protocol: no instance left (502),
            # a body over client_max_body_size (413).
            cluster.procs[1].kill()
            await asyncio.to_thread(cluster.procs[1].wait)
            for path, anthropic in _PROTOCOL_PATHS:
                async with http.post(front + path, json=body) as resp:
                    assert resp.status == 502
                    _assert_shape(await resp.json(), anthropic, "gateway_unreachable")
            async with http.get(front + "/v1/models") as resp:
                assert resp.status == 502
                _assert_shape(await resp.json(), False, "gateway_unreachable")
        for path, anthropic in _PROTOCOL_PATHS:
            status, error = await _oversized(front, path)
            assert status == 413
            _assert_shape(error, anthropic, "payload_too_large")


_PROTOCOL_PATHS = [
    ("/v1/chat/completions", False),
    ("/v1/responses", False),
    ("/v1/completions", False),
    ("/v1/messages", True),
    ("/api/Copilot/messages", True),
    ("/v1/messages/count_tokens", True),
]


def _assert_shape(error: dict[str, Any], anthropic: bool, code: str) -> None:
    if anthropic:  # Anthropic's: {"type": "error", "error": {"type", "message"}}
        assert error["type"] == "error" and set(error["error"]) == {"type", "message"}
        assert error["error"]["type"] in ("api_error", "request_too_large")
    else:  # OpenAI's: {"error": {"message", "type", "param", "code"}}
        assert set(error) == {"error"} and error["error"]["code"] == code
        assert set(error["error"]) == {"message", "type", "param", "code"}
    assert "nginx" in (error["error"]["message"])


async def _oversized(front: str, path: str) -> tuple[int, Any]:
    """A POST announcing 40 MB (over client_max_body_size 32m): nginx answers from the
    headers alone, so nothing of the body is sent."""
    host, port = front.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 40000000\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    # Read the answer by its length: nginx then waits a while for the body (lingering
    # close) before it closes the connection.
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = [line.lower() for line in head.split("\r\n")]
    assert "content-type: application/json" in lines
    length = next(int(line.split(":")[1]) for line in lines if line.startswith("content-length:"))
    payload = await reader.readexactly(length)
    writer.close()
    return int(lines[0].split()[1]), json.loads(payload)
