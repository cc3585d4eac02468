"""Anthropic Messages through the official anthropic SDK against a running gateway, with
the kernel's test providers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from g4f_server import errors
from tests.fake_providers import Scripted

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"echo": {"type": "string"}}},
}


@pytest.fixture
async def sdk(start_gateway: Any, tmp_path: Any) -> AsyncIterator[Any]:
    made: list[Any] = []

    async def make(*plugins: object, sdk_key: str = "unused", **config: Any) -> Any:
        base = await start_gateway(plugins=list(plugins), data_dir=str(tmp_path), **config)
        made.append(anthropic.AsyncAnthropic(base_url=base, api_key=sdk_key, max_retries=0))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def raw_events(client: Any, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    url = str(client.base_url).rstrip("/") + "/v1/messages"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        assert resp.status == 200
        text = await resp.text()
    out = []
    for block in filter(None, text.split("\n\n")):
        name, data = block.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == "event: " + event["type"]
        out.append((event["type"], event))
    return out


async def test_create_message(sdk: Any) -> None:
    echo = Scripted(usage=True)
    client = await sdk(echo)
    message = await client.messages.create(
        model="echo-1",
        max_tokens=100,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "hi claude"}],
        metadata={"user_id": "u-1"},
        stop_sequences=["END"],
        extra_body={"top_k": 5},
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hi claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 3)
    assert echo.seen[-1].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi claude"},
    ]


async def test_stream_text_and_final_message(sdk: Any) -> None:
    client = await sdk(Scripted())
    async with client.messages.stream(
        model="echo-1", max_tokens=50, messages=[{"role": "user", "content": "one two"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "echo: one two"
    assert final.content[0].text == "echo: one two"
    assert final.stop_reason == "end_turn"

    body = {
        "model": "echo-1",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "a"}],
    }
    kinds = [kind for kind, _ in await raw_events(client, body)]
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_thinking_blocks(sdk: Any) -> None:
    client = await sdk(Scripted())
    request: dict[str, Any] = {
        "model": "thinker",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "why"}],
    }
    message = await client.messages.create(**request)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think. "
    async with client.messages.stream(**request) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think. "


async def test_tool_use_round_trip(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    messages: list[Any] = [{"role": "user", "content": "Paris"}]
    first = await client.messages.create(
        model="echo-1", max_tokens=100, messages=messages, tools=[WEATHER]
    )
    assert first.stop_reason == "tool_use"
    use = first.content[0]
    assert use.type == "tool_use"
    assert use.name == "get_weather"
    assert use.input == {"echo": "Paris"}
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        },
    ]
    second = await client.messages.create(
        model="echo-1", max_tokens=100, messages=messages, tools=[WEATHER]
    )
    assert second.content[0].text == "echo: tool said sunny"
    assert echo.seen[-1].messages[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"echo": "Paris"}',
    }
    assert echo.seen[-1].messages[2] == {
        "role": "tool",
        "tool_call_id": use.id,
        "content": "sunny",
    }


async def test_streamed_tool_input(sdk: Any) -> None:
    client = await sdk(Scripted())
    async with client.messages.stream(
        model="echo-1",
        max_tokens=100,
        messages=[{"role": "user", "content": "Rome"}],
        tools=[WEATHER],
        tool_choice={"type": "any"},
    ) as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_message()
    assert "input_json" in kinds
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"echo": "Rome"}


async def test_image_blocks_reach_the_provider(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.invalid/a.png"}},
        {"type": "text", "text": "what is it"},
    ]
    await client.messages.create(
        model="echo-1", max_tokens=10, messages=[{"role": "user", "content": content}]
    )
    assert echo.seen[-1].messages[0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}},
        {"type": "text", "text": "what is it"},
    ]


async def test_errors_in_anthropic_shape(sdk: Any) -> None:
    client = await sdk(Scripted())
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.messages.create(
            model="missing", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Model 'missing' not found"},
    }
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )  # fmt: skip
    assert "web_search_20250305" in bad.value.message
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    url = str(client.base_url).rstrip("/") + "/v1/messages"
    async with aiohttp.ClientSession() as http, http.post(url, json={"model": "echo-1"}) as r:
        assert r.status == 400  # max_tokens and messages are required
        assert (await r.json())["error"]["type"] == "invalid_request_error"

    keyed = await sdk(Scripted(), sdk_key="wrong", api_key="right")
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await keyed.messages.create(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert auth.value.body["error"]["type"] == "authentication_error"
    right = await sdk(Scripted(), sdk_key="right", api_key="right")
    ok = await right.messages.create(
        model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert ok.content[0].text == "echo: x"


async def test_failure_before_the_first_byte(sdk: Any) -> None:
    client = await sdk(Scripted(fail=errors.ProviderRateLimitError("busy", retry_after=3)))
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    client = await sdk(Scripted(fail=errors.ProviderError("upstream down")))
    with pytest.raises(anthropic.InternalServerError) as down:
        async with client.messages.stream(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            await stream.get_final_message()
    assert down.value.status_code == 502
    assert down.value.body["error"]["type"] == "api_error"


async def test_failure_after_the_first_byte_is_an_error_event(sdk: Any) -> None:
    client = await sdk(Scripted(fail_after=1))
    body = {
        "model": "echo-1",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "a b c"}],
    }
    events = await raw_events(client, body)
    assert events[0][0] == "message_start"
    error = {"type": "api_error", "message": "upstream dropped the connection"}
    assert events[-1] == ("error", {"type": "error", "error": error})
    assert "message_stop" not in [kind for kind, _ in events]
    with pytest.raises(anthropic.APIStatusError):
        async with client.messages.stream(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "a b c"}]
        ) as stream:
            async for _ in stream.text_stream:
                pass


async def test_count_tokens(sdk: Any) -> None:
    client = await sdk(Scripted())
    count = await client.messages.count_tokens(
        model="echo-1", messages=[{"role": "user", "content": "hello there, how are you?"}]
    )
    assert count.input_tokens > 0
    more = await client.messages.count_tokens(
        model="echo-1",
        messages=[{"role": "user", "content": "hello there, how are you?"}],
        tools=[WEATHER],
    )
    assert more.input_tokens > count.input_tokens


async def test_per_provider_route_and_headers(start_gateway: Any, tmp_path: Any) -> None:
    base = await start_gateway(
        plugins=[Scripted(), Scripted(name="Other")], data_dir=str(tmp_path), api_key="k"
    )
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", "anthropic-beta": "x"}
    body = {"model": "", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/api/Other/messages", json=body, headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["provider"] == "Other"
            assert r.headers["X-G4F-Provider"] == "Other"
        async with http.post(base + "/api/Nope/messages", json=body, headers=headers) as r:
            assert r.status == 404
            assert (await r.json())["error"]["type"] == "not_found_error"
