"""Retry hints (issue 25 item 7): every protocol's error answers say whether a retry can
help, ``x-should-retry: false`` on what the same request would get again, ``true`` with
``Retry-After`` on 429 and 503; decided in one place (``errors.retry_hints``)."""

from __future__ import annotations

from typing import Any

import pytest

from g4f_server import errors
from g4f_server.web import connections
from tests.fake_providers import Scripted

HELLO = [{"role": "user", "content": "hello"}]
# Each protocol: its path, a good body for a model, and a body it refuses (400).
PROTOCOLS: dict[str, tuple[str, Any, dict[str, Any]]] = {
    "chat": (
        "/v1/chat/completions",
        lambda model: {"model": model, "messages": HELLO},
        {"model": "echo-1", "messages": []},
    ),
    "responses": (
        "/v1/responses",
        lambda model: {"model": model, "input": "hello"},
        {"model": "echo-1", "input": 5},
    ),
    "messages": (
        "/v1/messages",
        lambda model: {"model": model, "max_tokens": 10, "messages": HELLO},
        {"model": "echo-1", "messages": HELLO},  # no max_tokens
    ),
    "completions": (
        "/v1/completions",
        lambda model: {"model": model, "prompt": "hello"},
        {"model": "echo-1"},  # no prompt
    ),
}


def error_type(protocol: str, body: dict[str, Any]) -> str:
    """The error's type in the protocol's own shape (Anthropic's differs)."""
    if protocol == "messages":
        assert body["type"] == "error"
    return str(body["error"]["type"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_answers_a_retry_cannot_fix_say_so(make_client: Any, protocol: str) -> None:
    path, good, bad = PROTOCOLS[protocol]
    client = await make_client(Scripted(), max_body_size=4096)
    cases = [
        (await client.post(path, json=bad), 400),
        (await client.post(path, json=good("no-such-model")), 404),
        (await client.post(path, json=good("x" * 5000)), 413),
    ]
    keyed = await make_client(Scripted(), api_key="right")
    cases.append((await keyed.post(path, json=good("echo-1"), headers={"x-api-key": "no"}), 401))
    refused = await make_client(Scripted(fail=errors.ProviderAuthError("log in first")))
    cases.append((await refused.post(path, json=good("echo-1")), 403))
    for resp, status in cases:
        assert resp.status == status, await resp.text()
        assert resp.headers["x-should-retry"] == "false", status
        assert "Retry-After" not in resp.headers
        error_type(protocol, await resp.json())  # still the protocol's own shape
    ok = await client.post(path, json=good("echo-1"))
    assert ok.status == 200 and "x-should-retry" not in ok.headers


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_come_back_later_answers_say_when(make_client: Any, protocol: str) -> None:
    path, good, _ = PROTOCOLS[protocol]
    limited = await make_client(
        Scripted(fail=errors.ProviderRateLimitError("slow down", retry_after=7))
    )
    resp = await limited.post(path, json=good("echo-1"))
    assert resp.status == 429
    assert (resp.headers["x-should-retry"], resp.headers["Retry-After"]) == ("true", "7")
    assert error_type(protocol, await resp.json()) in ("rate_limit_error",)
    # A 503 whose cause gave no estimate still says when: the default second.
    down = await make_client(Scripted(fail=errors.ProviderNotWorkingError("not started")))
    resp = await down.post(path, json=good("echo-1"))
    assert resp.status == 503
    assert (resp.headers["x-should-retry"], resp.headers["Retry-After"]) == ("true", "1")
    # An upstream failure (502) leaves the decision to the client's own policy.
    broken = await make_client(Scripted(fail=errors.ProviderError("upstream down")))
    resp = await broken.post(path, json=good("echo-1"))
    assert resp.status == 502 and "x-should-retry" not in resp.headers


async def test_the_rule_and_the_answers_outside_the_middleware(make_client: Any) -> None:
    assert errors.retry_hints(422) == {"x-should-retry": "false"}
    assert errors.retry_hints(402) == {"x-should-retry": "false"}
    for status in (408, 409, 500, 502, 504):  # a retry may help: no hint
        assert errors.retry_hints(status) == {}
    assert errors.retry_hints(429, {"Retry-After": "9"}) == {"x-should-retry": "true"}
    # The connection caps answer with prepared bytes, before any middleware.
    for refusal in (connections.OVER_CAP, connections.OVER_SHARE):
        head = refusal.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert b"x-should-retry: true" in head and b"Retry-After: 1" in head
    # CORS refuses a foreign origin before the kernel's middleware too.
    client = await make_client(Scripted())
    resp = await client.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert resp.status == 403 and resp.headers["x-should-retry"] == "false"
    # Unknown routes and methods (aiohttp's own 404/405) get the hint as well.
    assert (await client.get("/v1/nothing")).headers["x-should-retry"] == "false"
    assert (await client.delete("/v1/models")).headers["x-should-retry"] == "false"
