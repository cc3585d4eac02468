"""Issue 28 items 4 and 7: bad input is a 400 in the route's own error shape (never a 500),
and a compressed body is inflated by the gateway, in steps, within ``max_body_size``, its
bulk off the event loop. Through a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from typing import Any

import orjson
import pytest

from tests.fake_providers import Scripted
from tests.web.test_request_limits import raw

MESSAGES = "/v1/messages"
CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hi"}]
ANTHROPIC = {"model": "echo-1", "max_tokens": 16, "messages": HELLO}
OPENAI = {"model": "echo-1", "messages": HELLO}


def _anthropic_error(body: dict[str, Any]) -> str:
    assert body["type"] == "error", body
    assert body["error"]["type"] == "invalid_request_error", body
    return str(body["error"]["message"])


async def test_anthropic_thinking_budget_not_a_number(make_client: Any) -> None:
    provider = Scripted()
    client = await make_client(provider)
    body = {**ANTHROPIC, "thinking": {"type": "enabled", "budget_tokens": "lots"}}
    resp = await client.post(MESSAGES, json=body)
    assert resp.status == 400
    assert "thinking.budget_tokens" in _anthropic_error(await resp.json())
    ok = {**ANTHROPIC, "thinking": {"type": "enabled", "budget_tokens": 20000}}
    assert (await client.post(MESSAGES, json=ok)).status == 200
    assert len(provider.seen) == 1  # only the good one reached the provider


@pytest.mark.parametrize("source", [["a", "b"], "http://x.invalid/cat.png", 7])
async def test_anthropic_image_source_not_an_object(make_client: Any, source: Any) -> None:
    client = await make_client(Scripted())
    content = [{"type": "image", "source": source}, {"type": "text", "text": "what?"}]
    resp = await client.post(
        MESSAGES, json={**ANTHROPIC, "messages": [{"role": "user", "content": content}]}
    )
    assert resp.status == 400
    assert "source" in _anthropic_error(await resp.json())


async def test_anthropic_tool_result_content_not_a_list(make_client: Any) -> None:
    client = await make_client(Scripted())
    messages = [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": 5}]},
    ]
    resp = await client.post(MESSAGES, json={**ANTHROPIC, "messages": messages})
    assert resp.status == 400
    _anthropic_error(await resp.json())


@pytest.mark.parametrize("path", [MESSAGES, CHAT])
async def test_a_body_that_is_not_gzip(make_client: Any, path: str) -> None:
    client = await make_client(Scripted())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await client.post(path, data=b'{"not": "gzip"}', headers=headers)
    assert resp.status == 400
    body = await resp.json()
    if path == MESSAGES:
        assert "gzip" in _anthropic_error(body)
    else:
        assert body["error"]["code"] == "invalid_content_encoding"
    truncated = gzip.compress(b'{"model": "echo-1"}')[:-12]
    resp = await client.post(path, data=truncated, headers=headers)
    assert resp.status == 400
    resp = await client.post(path, data=b"{}", headers={**headers, "Content-Encoding": "br"})
    assert resp.status == 400


@pytest.mark.parametrize("path", [MESSAGES, CHAT])
async def test_an_expect_header_that_is_not_text(make_client: Any, path: str) -> None:
    client = await make_client(Scripted())
    port = client.port
    body = orjson.dumps(ANTHROPIC if path == MESSAGES else OPENAI)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n".encode()
    )
    for expect in (b"\xff\xfe-continue", b"200-ok"):
        status, answer = await raw(port, head + b"Expect: " + expect + b"\r\n\r\n", body)
        assert status == 400, answer
        error = orjson.loads(answer)
        if path == MESSAGES:
            _anthropic_error(error)
        else:
            assert error["error"]["code"] == "unsupported_expectation"
    # 100-continue still works: the interim answer, then the real one.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + b"Expect: 100-continue\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 Continue")
    writer.write(body)
    assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_an_expect_header_that_is_not_text_on_no_route(make_client: Any) -> None:
    client = await make_client(Scripted())
    for method, path, status in (("POST", "/nope", 404), ("PUT", "/health", 405)):
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            "Content-Length: 2\r\nExpect: \xff\xfe\r\n\r\n"
        ).encode("latin-1")
        got, answer = await raw(client.port, head, b"{}")
        assert got == 400, answer
        assert orjson.loads(answer)["error"]["code"] == "unsupported_expectation"
        got, _ = await raw(client.port, head.replace(b"Expect: \xff\xfe\r\n", b""), b"{}")
        assert got == status, (method, path)  # without it: what it always was
    resp = await client.get("/v1/chat/completions")
    assert resp.status == 405 and "POST" in resp.headers["Allow"]


# --- item 7: compressed bodies ------------------------------------------------------------


def _bomb(size: int) -> bytes:
    """``size`` bytes of zeros, gzipped (about a thousandth of the size), made in steps."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    out = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(out) + packer.flush()


async def test_gzip_and_deflate_bodies_are_read(make_client: Any) -> None:
    provider = Scripted()
    client = await make_client(provider)
    plain = orjson.dumps({**OPENAI, "messages": [{"role": "user", "content": "zip"}]})
    for coding, data in (
        ("gzip", gzip.compress(plain)),
        ("deflate", zlib.compress(plain)),
        ("deflate", zlib.compress(plain)[2:-4]),  # raw deflate, as some clients send it
        ("gzip", gzip.compress(plain[:20]) + gzip.compress(plain[20:])),  # two members
    ):
        headers = {"Content-Encoding": coding, "Content-Type": "application/json"}
        resp = await client.post(CHAT, data=data, headers=headers)
        assert resp.status == 200, (coding, await resp.text())
        assert provider.seen[-1].messages[-1]["content"] == "zip"


async def test_a_gzip_bomb_is_refused_within_the_limit_off_the_loop(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from g4f_server.web import body as inflate

    threads: list[str] = []
    run = inflate._Inflater.run

    def spy(self: Any, budget: int) -> bool:
        threads.append(threading.current_thread().name)
        return run(self, budget)

    monkeypatch.setattr(inflate._Inflater, "run", spy)
    client = await make_client(Scripted(), max_body_size=4 * 1024 * 1024)
    bomb = _bomb(64 * 1024 * 1024)
    assert len(bomb) < 100 * 1024  # a small body on the wire
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await client.post(CHAT, data=bomb, headers=headers)
    assert resp.status == 413
    error = (await resp.json())["error"]
    assert "once inflated" in error["message"] and "max_body_size" in error["message"]
    # The first megabyte on the loop, the rest in a worker thread.
    assert threads[0] == threading.main_thread().name
    assert len(threads) == 2 and threads[1] != threading.main_thread().name
    # A large body that fits is inflated the same way, and read whole.
    text = "a" * (3 * 1024 * 1024)
    big = gzip.compress(orjson.dumps({**OPENAI, "messages": [{"role": "user", "content": text}]}))
    resp = await client.post(CHAT, data=big, headers=headers)
    assert resp.status == 200
