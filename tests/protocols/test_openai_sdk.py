"""The official openai SDK against a running gateway on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from g4f_server import errors
from g4f_server.provider import ModelInfo
from tests.fake_providers import Scripted


@pytest.fixture
async def sdk(start_gateway: Any, tmp_path: Any) -> Any:
    async def make(*plugins: object, sdk_key: str = "unused", **config: Any) -> openai.AsyncOpenAI:
        base = await start_gateway(plugins=list(plugins), data_dir=str(tmp_path), **config)
        return openai.AsyncOpenAI(base_url=base + "/v1", api_key=sdk_key, max_retries=0)

    return make


async def test_chat_and_stream_with_usage(sdk: Any) -> None:
    client = await sdk(Scripted(usage=True))
    reply = await client.chat.completions.create(
        model="echo-1", messages=[{"role": "user", "content": "hi sdk"}]
    )
    assert reply.choices[0].message.content == "echo: hi sdk"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 14

    stream = await client.chat.completions.create(
        model="echo-1",
        messages=[{"role": "user", "content": "hi stream"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "echo: hi stream"
    assert finish == "stop"
    assert usage is not None and usage.prompt_tokens == 11


async def test_tool_call_round_trip(sdk: Any) -> None:
    client = await sdk(Scripted())
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}},
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Paris"}]
    first = await client.chat.completions.create(model="echo-1", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"echo": "Paris"}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await client.chat.completions.create(model="echo-1", messages=messages, tools=tools)
    assert second.choices[0].message.content == "echo: tool said sunny"


async def test_json_object_mode(sdk: Any) -> None:
    json_model = ModelInfo("echo-1", frozenset({"chat", "json_schema"}))
    client = await sdk(Scripted(models=[json_model]))
    reply = await client.chat.completions.create(
        model="echo-1",
        messages=[{"role": "user", "content": "data"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content) == {"echo": "data"}


async def test_models_list_and_retrieve(sdk: Any) -> None:
    client = await sdk(Scripted())
    ids = [m.id async for m in client.models.list()]
    assert {"echo-1", "thinker", "plain", "Echo"} <= set(ids)
    model = await client.models.retrieve("gpt-4o-mini")  # a public name, echoed
    assert model.id == "gpt-4o-mini"
    assert model.owned_by == "Echo Labs"


async def test_error_mapping_to_sdk_exceptions(sdk: Any) -> None:
    client = await sdk(Scripted())
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(
            model="missing", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("missing")
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="echo-1", messages=[])
    assert bad.value.param == "messages"


async def test_auth_errors(sdk: Any) -> None:
    wrong = await sdk(Scripted(), sdk_key="wrong", api_key="right")
    with pytest.raises(openai.AuthenticationError) as info:
        await wrong.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        await wrong.models.list()
    right = await sdk(Scripted(), sdk_key="right", api_key="right")
    reply = await right.chat.completions.create(
        model="echo-1", messages=[{"role": "user", "content": "ok"}]
    )
    assert reply.choices[0].message.content == "echo: ok"


async def test_provider_failures_map_to_sdk_exceptions(sdk: Any) -> None:
    client = await sdk(Scripted(fail=errors.ProviderRateLimitError("busy", retry_after=3)))
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "x"}]
        )
    client = await sdk(Scripted(fail=errors.ProviderError("upstream down")))
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 502


async def test_error_mid_stream_raises_in_sdk(sdk: Any) -> None:
    client = await sdk(Scripted(fail_after=1))
    stream = await client.chat.completions.create(
        model="echo-1", messages=[{"role": "user", "content": "a b c"}], stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
