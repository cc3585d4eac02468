"""Chat completions through the whole kernel, with test providers (in-process client)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from g4f_server import errors, events
from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols.openai_chat.render import ChunkRenderer
from tests.fake_providers import Batched, Scripted

USER = [{"role": "user", "content": "hello there"}]


def sse_events(raw: str) -> list[Any]:
    out = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


async def test_non_stream_completion_matches_openai_schema(make_client: Any) -> None:
    client = await make_client(Scripted(usage=True))
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 200
    body = await resp.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["provider"] == "Echo"
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "echo: hello there",
        "refusal": None,
    }
    assert choice["logprobs"] is None
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    assert resp.headers["X-G4F-Provider"] == "Echo"
    assert resp.headers["X-G4F-Attempts"] == "1"
    assert len(resp.headers["X-Request-Id"]) == 32


async def test_usage_is_estimated_and_marked_when_provider_gives_none(make_client: Any) -> None:
    client = await make_client(Scripted())
    body = await (
        await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    ).json()
    usage = body["usage"]
    assert usage["estimated"] is True
    assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_has_role_first_one_id_finish_and_separate_usage_chunk(
    make_client: Any,
) -> None:
    client = await make_client(Scripted(usage=True))
    resp = await client.post(
        "/v1/chat/completions",
        json={
            "model": "echo-1",
            "messages": USER,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    chunks = sse_events(await resp.text())
    assert chunks[-1] == "[DONE]"
    chunks = chunks[:-1]
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: hello there"
    finish = chunks[-2]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in finish
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 14
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


async def test_stream_without_include_usage_has_no_usage_chunk(make_client: Any) -> None:
    client = await make_client(Scripted())
    resp = await client.post(
        "/v1/chat/completions", json={"model": "echo-1", "messages": USER, "stream": True}
    )
    chunks = sse_events(await resp.text())[:-1]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("streamed", [False, True])
async def test_no_null_system_fingerprint(make_client: Any, streamed: bool) -> None:
    """The official schema types ``system_fingerprint`` as a string: ``null`` fails strict
    validators on every response and chunk, so it is left out."""
    client = await make_client(Scripted())
    body = {"model": "echo-1", "messages": USER, "stream": streamed}
    if streamed:
        body["stream_options"] = {"include_usage": True}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    bodies = sse_events(await resp.text())[:-1] if streamed else [await resp.json()]
    assert bodies and all("system_fingerprint" not in b for b in bodies)


async def test_reasoning_is_reported_separately(make_client: Any) -> None:
    client = await make_client(Scripted())
    body = await (
        await client.post("/v1/chat/completions", json={"model": "thinker", "messages": USER})
    ).json()
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "Let me think. "
    assert message["content"] == "echo: hello there"


async def test_tool_calls_non_stream_and_stream(make_client: Any) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    client = await make_client(Scripted())
    payload = {"model": "echo-1", "messages": USER, "tools": tools, "tool_choice": "auto"}
    body = await (await client.post("/v1/chat/completions", json=payload)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"echo": "hello there"}'},
        }
    ]
    resp = await client.post("/v1/chat/completions", json={**payload, "stream": True})
    chunks = sse_events(await resp.text())[:-1]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"] == "call_1" and calls[0]["function"]["name"] == "lookup"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"echo": "hello there"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_whole_openai_request_is_accepted(make_client: Any) -> None:
    provider = Scripted()
    client = await make_client(provider)
    payload = {
        "model": "echo-1",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "system", "content": [{"type": "text", "text": "sys"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        "max_completion_tokens": 100,
        "max_tokens": 50,
        "stop": "END",
        "temperature": 0.2,
        "top_p": 0.5,
        "seed": 7,
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "stream_options": {"include_usage": False},
        "logit_bias": {"50256": -100},
        "some_future_field": {"nested": True},
        "metadata": {"a": "b"},
        "store": False,
        "reasoning_effort": "low",
        "modalities": ["text"],
    }
    resp = await client.post("/v1/chat/completions", json=payload)
    # json_schema is not a capability of echo-1, so this must be refused clearly...
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_capability"
    # ...and accepted once the model supports it.
    provider.models[0] = provider.models[0].__class__(
        "echo-1", frozenset({"chat", "tools", "vision", "json_schema"})
    )
    client = await make_client(provider)
    resp = await client.post("/v1/chat/completions", json=payload)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "echo: tool said 42"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "echo-1", "messages": []}, "messages"),
        ({"model": "echo-1"}, "messages"),
        ({"model": "echo-1", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "echo-1", "messages": [{"role": "user"}]}, "messages.0"),
        ({"model": "echo-1", "messages": USER, "temperature": 3}, "temperature"),
        ({"model": "echo-1", "messages": USER, "max_tokens": 0}, "max_tokens"),
        (
            {"model": "echo-1", "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
            "messages.0.content",
        ),
    ],
)
async def test_invalid_requests_get_400_with_param(
    make_client: Any, payload: Any, param: str
) -> None:
    client = await make_client(Scripted())
    resp = await client.post("/v1/chat/completions", json=payload)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


@pytest.mark.parametrize("temperature", [None, 3])
async def test_a_mistyped_provider_option_is_refused_first(
    make_client: Any, temperature: int | None
) -> None:
    """``modalities`` is an extra field providers read: its type is checked before the
    fields are (ChatRequest's 'before' validator), so it is the error named even when a
    field is wrong too. (Moving the check after the fields saves ~4.4k instructions a
    body but would name ``temperature`` here instead.)"""
    client = await make_client(Scripted())
    payload = {"model": "echo-1", "messages": USER, "modalities": "text"}
    if temperature is not None:
        payload["temperature"] = temperature
    resp = await client.post("/v1/chat/completions", json=payload)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == "modalities"
    assert error["message"] == (
        """Invalid value for 'modalities': a list such as ["text"] or ["text", "audio"]"""
    )


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]"])
async def test_unparseable_bodies_get_400(make_client: Any, body: bytes) -> None:
    client = await make_client(Scripted())
    resp = await client.post(
        "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_unknown_model_route_and_method_are_json_404_405(make_client: Any) -> None:
    client = await make_client(Scripted())
    resp = await client.post("/v1/chat/completions", json={"model": "nope", "messages": USER})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "model_not_found"
    resp = await client.get("/v1/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "unknown_route"
    resp = await client.get("/v1/chat/completions")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]


async def test_body_too_large_is_413(make_client: Any) -> None:
    client = await make_client(Scripted(), max_body_size=2048)
    big = {"model": "echo-1", "messages": [{"role": "user", "content": "x" * 5000}]}
    resp = await client.post("/v1/chat/completions", json=big)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


async def test_a_chunked_body_too_large_is_413_and_one_within_the_limit_is_read(
    make_client: Any,
) -> None:
    # No Content-Length to refuse up front: the size is checked on what arrived, whether it
    # is all buffered by the time the handler reads it (no timer) or still arriving.
    client = await make_client(Scripted(), max_body_size=2048)
    big = {"model": "echo-1", "messages": [{"role": "user", "content": "x" * 5000}]}
    small = {"model": "echo-1", "messages": [{"role": "user", "content": "chunked"}]}

    async def chunked(body: dict[str, Any], pieces: int) -> Any:
        raw = json.dumps(body).encode()
        step = -(-len(raw) // pieces)
        for at in range(0, len(raw), step):
            yield raw[at : at + step]
            await asyncio.sleep(0.01 if pieces > 1 else 0)

    for pieces in (1, 4):
        resp = await client.post("/v1/chat/completions", data=chunked(big, pieces))
        assert resp.status == 413, pieces
        assert (await resp.json())["error"]["code"] == "payload_too_large"
        resp = await client.post("/v1/chat/completions", data=chunked(small, pieces))
        assert resp.status == 200, pieces
        assert (await resp.json())["choices"][0]["message"]["content"] == "echo: chunked"


async def test_request_proxy_field_is_refused_unless_allowed(make_client: Any) -> None:
    payload = {"model": "echo-1", "messages": USER, "proxy": "http://169.254.169.254:80"}
    client = await make_client(Scripted())
    resp = await client.post("/v1/chat/completions", json=payload)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "proxy_not_allowed"
    client = await make_client(Scripted(), allow_request_proxy=True)
    assert (await client.post("/v1/chat/completions", json=payload)).status == 200


# --- routing -----------------------------------------------------------------------------


async def test_model_resolution_forms(make_client: Any) -> None:
    a, b = Scripted(name="Alpha", priority=1), Scripted(name="Beta", priority=2)
    client = await make_client(a, b)

    async def served_by(**payload: Any) -> tuple[str, str]:
        resp = await client.post("/v1/chat/completions", json={"messages": USER, **payload})
        assert resp.status == 200, await resp.text()
        return resp.headers["X-G4F-Provider"], (await resp.json())["model"]

    assert await served_by(model="echo-1") == ("Alpha", "echo-1")
    assert await served_by(model="gpt-4o-mini") == ("Alpha", "echo-1")  # alias
    assert await served_by(model="echo-1", provider="beta") == ("Beta", "echo-1")
    assert await served_by(model="Beta:thinker") == ("Beta", "thinker")
    assert await served_by(model="Beta") == ("Beta", "echo-1")  # provider as model
    assert await served_by(model="") == ("Alpha", "echo-1")
    resp = await client.post(
        "/api/Beta/chat/completions", json={"model": "plain", "messages": USER}
    )
    assert resp.headers["X-G4F-Provider"] == "Beta"
    resp = await client.post("/api/Nobody/chat/completions", json={"messages": USER})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "provider_not_found"


async def test_configured_default_and_priority(make_client: Any) -> None:
    a, b = Scripted(name="Alpha", priority=1), Scripted(name="Beta", priority=2)
    client = await make_client(a, b, provider="Beta", model="thinker")
    resp = await client.post("/v1/chat/completions", json={"messages": USER})
    assert resp.headers["X-G4F-Provider"] == "Beta"
    assert b.seen[-1].model == "thinker"
    client = await make_client(a, b, priority=["Beta"])
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.headers["X-G4F-Provider"] == "Beta"


async def test_capability_filter_skips_models_without_tools(make_client: Any) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    client = await make_client(Scripted())
    resp = await client.post(
        "/v1/chat/completions", json={"model": "plain", "messages": USER, "tools": tools}
    )
    assert resp.status == 400
    assert "tools" in (await resp.json())["error"]["message"]


async def test_failover_before_first_byte_moves_to_next_provider(make_client: Any) -> None:
    broken = Scripted(name="Alpha", priority=1, fail=errors.ProviderError("upstream 500"))
    good = Scripted(name="Beta", priority=2)
    client = await make_client(broken, good)
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 200
    assert resp.headers["X-G4F-Provider"] == "Beta"
    assert resp.headers["X-G4F-Attempts"] == "2"
    assert len(broken.seen) == 1 and len(good.seen) == 1


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (errors.ProviderError("boom"), 502, "provider_error"),
        (errors.ProviderTimeoutError("slow"), 504, "upstream_timeout"),
        (errors.ProviderRateLimitError("slow down", retry_after=7), 429, "rate_limit_exceeded"),
        (errors.ProviderAuthError("needs cookies"), 403, "provider_auth_required"),
        (KeyError("internal detail"), 502, "provider_error"),
    ],
)
async def test_all_providers_failing_maps_to_status(
    make_client: Any, failure: Exception, status: int, code: str
) -> None:
    client = await make_client(Scripted(fail=failure))
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == status
    error = (await resp.json())["error"]
    assert error["code"] == code
    assert "internal detail" not in error["message"]
    if status == 429:
        assert resp.headers["Retry-After"] == "7"


async def test_client_errors_from_provider_do_not_fail_over(make_client: Any) -> None:
    first = Scripted(name="Alpha", priority=1, fail=errors.InvalidRequestError("bad image"))
    second = Scripted(name="Beta", priority=2)
    client = await make_client(first, second)
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 400
    assert second.seen == []


async def test_failure_after_first_byte_ends_stream_with_error_event(make_client: Any) -> None:
    client = await make_client(Scripted(fail_after=2))
    resp = await client.post(
        "/v1/chat/completions", json={"model": "echo-1", "messages": USER, "stream": True}
    )
    assert resp.status == 200
    chunks = sse_events(await resp.text())
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["error"]["code"] == "provider_error"
    assert not any(
        c["choices"][0].get("finish_reason")
        for c in chunks[:-2]
        if isinstance(c, dict) and c.get("choices")
    )


async def test_failure_mid_answer_non_stream_is_502_not_partial_200(make_client: Any) -> None:
    client = await make_client(Scripted(fail_after=2))
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 502


async def test_slow_first_event_times_out_as_504(make_client: Any) -> None:
    client = await make_client(Scripted(delay=2), timeout=0.2)
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 504
    assert (await resp.json())["error"]["code"] == "upstream_timeout"


async def test_conversation_state_reaches_provider_on_next_turn(make_client: Any) -> None:
    provider = Scripted()
    client = await make_client(provider)
    for _ in range(2):
        resp = await client.post("/api/Echo/conv-1/chat/completions", json={"messages": USER})
        assert resp.status == 200
        assert (await resp.json())["conversation_id"] == "conv-1"
    assert provider.seen[0].conversation is None
    assert provider.seen[1].conversation == {"turn": 1}
    assert provider.seen[1].conversation_id == "conv-1"
    # The body field works the same way, and other ids stay separate.
    await client.post("/v1/chat/completions", json={"messages": USER, "conversation_id": "conv-1"})
    assert provider.seen[2].conversation == {"turn": 2}
    await client.post("/v1/chat/completions", json={"messages": USER, "conversation_id": "other"})
    assert provider.seen[3].conversation is None


async def test_provider_key_and_request_id_reach_the_provider(make_client: Any) -> None:
    provider = Scripted()
    client = await make_client(provider)
    await client.post(
        "/v1/chat/completions",
        json={"messages": USER},
        headers={"X-Request-Id": "abc-123", "X-Provider-Key": "pk_1"},
    )
    await client.post("/v1/chat/completions", json={"messages": USER, "api_key": "sk_body"})
    assert provider.seen[0].request_id == "abc-123"
    assert provider.seen[0].api_key == "pk_1"
    assert provider.seen[1].api_key == "sk_body"


async def test_idle_gap_mid_stream_ends_with_timeout_error(make_client: Any) -> None:
    from tests.fake_providers import Gated

    client = await make_client(Gated(), stream_timeout=0.3)
    resp = await client.post("/v1/chat/completions", json={"messages": USER, "stream": True})
    chunks = sse_events(await resp.text())
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["error"]["code"] == "upstream_timeout"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-2]) == "first"
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", json={"messages": USER}), 10)
    assert resp.status == 504


async def test_non_stream_answer_that_never_ends_times_out_as_504(make_client: Any) -> None:
    """Steady chunks keep the idle limit happy; the whole answer still has to arrive
    within the timeout, and the provider's stream is closed."""
    from tests.fake_providers import Endless

    provider = Endless()
    client = await make_client(provider, timeout=0.3, stream_timeout=5)
    started = asyncio.get_running_loop().time()
    resp = await client.post("/v1/chat/completions", json={"messages": USER})
    assert resp.status == 504
    error = (await resp.json())["error"]
    assert error["code"] == "upstream_timeout"
    assert error["message"] == "Provider 'Endless' did not finish within 0.3s"
    assert asyncio.get_running_loop().time() - started < 3
    await asyncio.wait_for(provider.closed.wait(), 5)


async def test_slow_client_writes_do_not_count_as_provider_idle(make_client: Any) -> None:
    """Only waiting for the provider counts: a stream of steady chunks never times out."""
    from tests.fake_providers import Endless

    provider = Endless()
    # Gaps of 10 ms against a 200 ms limit leave room for a loaded CI machine.
    client = await make_client(provider, stream_timeout=0.2)
    resp = await client.post("/v1/chat/completions", json={"messages": USER, "stream": True})
    for _ in range(60):  # ~0.6 s of chunks: three times the idle limit
        line = await resp.content.readline()
        assert b'"error"' not in line
    resp.close()


async def test_all_providers_failing_names_every_reason(make_client: Any) -> None:
    first = Scripted(name="Alpha", priority=1, fail=errors.ProviderError("alpha is down"))
    second = Scripted(name="Beta", priority=2, fail=errors.ProviderTimeoutError("beta is slow"))
    client = await make_client(first, second)
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 502  # the reasons disagree (502 and 504): a plain provider error
    assert resp.headers["X-G4F-Attempts"] == "2"
    message = (await resp.json())["error"]["message"]
    assert "2 tried" in message and "Alpha: alpha is down" in message
    assert "Beta: beta is slow" in message
    both_slow = Scripted(name="Gamma", priority=3, fail=errors.ProviderTimeoutError("slow too"))
    client = await make_client(
        Scripted(name="Delta", fail=errors.ProviderTimeoutError("x")), both_slow
    )
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 504


async def test_a_batch_goes_out_whole_without_waiting_for_the_next(make_client: Any) -> None:
    """A provider's list is written as soon as it is yielded (no buffering), in order,
    the role chunk with it; an empty list is skipped."""
    first = [events.ModelUsed("batch-1b"), events.TextDelta("a"), events.TextDelta("b")]
    provider = Batched(items=[[], first, "wait", [events.TextDelta("c"), events.Finish("stop")]])
    client = await make_client(provider)
    body = {"model": "batch-1", "messages": USER, "stream": True}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    seen = b""
    while b'"content":"b"' not in seen:  # the provider is still waiting for the gate
        seen += await asyncio.wait_for(resp.content.readany(), 5)
    provider.gate.set()
    chunks = sse_events((seen + await resp.content.read()).decode())
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert contents == ["a", "b", "c", None]
    # named with the first events, the model is the whole stream's, the role chunk's too
    assert {c["model"] for c in chunks[:-1]} == {"batch-1b"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-1] == "[DONE]"

    provider.items = [first, [events.TextDelta("c")], events.TextDelta("d")]
    resp = await client.post("/v1/chat/completions", json={**body, "stream": False})
    assert (await resp.json())["choices"][0]["message"]["content"] == "abcd"


async def test_empty_first_batch_then_failure_still_fails_over(make_client: Any) -> None:
    broken = Batched(items=[[], errors.ProviderError("upstream 500")], name="A", priority=1)
    good = Batched(items=[[events.TextDelta("fine")]], name="B", priority=2)
    client = await make_client(broken, good)
    resp = await client.post("/v1/chat/completions", json={"model": "batch-1", "messages": USER})
    assert resp.status == 200 and resp.headers["X-G4F-Provider"] == "B"
    assert (await resp.json())["choices"][0]["message"]["content"] == "fine"


async def test_upstream_headers_a_provider_passes_on(make_client: Any) -> None:
    """ctx.response_headers: the x- ones reach the client, never over the gateway's own."""
    headers = {"x-usage-total-tokens": "7", "X-G4F-Provider": "spoof", "Server": "upstream"}
    provider = Batched(items=[[events.TextDelta("a")]], headers=headers)
    client = await make_client(provider)
    for stream in (False, True):
        body = {"model": "batch-1", "messages": USER, "stream": stream}
        resp = await client.post("/v1/chat/completions", json=body)
        await resp.read()
        assert resp.headers["x-usage-total-tokens"] == "7"
        assert resp.headers["X-G4F-Provider"] == "Batcher"
        assert resp.headers.get("Server") != "upstream"


class _PluginText(events.TextDelta):
    """A plugin's own TextDelta subclass: rendered like any text delta."""

    __slots__ = ()


async def test_streamed_bytes_equal_the_renderers_event_by_event(make_client: Any) -> None:
    """The write loop splices text chunks from the renderer's ``text_parts`` instead of
    calling ``render``: the bytes are what rendering each event gives, across a model
    named mid-stream (new parts), a plugin's subclass, empty and odd text."""
    batches: list[list[events.ChatEvent]] = [
        [events.TextDelta("a"), _PluginText("b"), events.TextDelta(""), events.TextDelta('"é\0\n')],
        [events.ModelUsed("other-2"), events.TextDelta("c\u2028")],
        [events.TextDelta("d"), events.Finish("length")],
    ]
    client = await make_client(Batched(items=batches))
    body = {"model": "batch-1", "messages": USER, "stream": True}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    got = await resp.read()
    first = json.loads(got.split(b"\n\n")[0].removeprefix(b"data: "))

    renderer = ChunkRenderer(
        first["id"], first["model"], first["provider"], created=first["created"]
    )  # the frame with that second
    transcript = Transcript()
    want = [renderer.start()]
    for event in (event for batch in batches for event in batch):
        transcript.add(event)
        want.append(renderer.render(event) or b"")
    want.append(renderer.end(transcript))
    assert got == b"".join(want)
    assert got.count(b'"model":"other-2"') == 3 and b'"content":"b"' in got


@pytest.mark.parametrize("reason", ["stop", "length", "tool_calls", "content_filter"])
def test_the_usual_end_is_the_finish_chunk_and_done(reason: str) -> None:
    """``end`` sends the usual finish chunk and [DONE] as one encoded piece: the same
    bytes as the finish chunk built for that reason."""
    renderer = ChunkRenderer("chatcmpl-1", "m-1", "P")
    transcript = Transcript()
    transcript.add(events.Finish(reason))  # type: ignore[arg-type]
    chunk = {**renderer._chunk({}, reason)}
    assert (
        renderer.end(transcript)
        == b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\ndata: [DONE]\n\n"
    )
