"""The Responses, Anthropic Messages and legacy completions protocols end to end: the
official SDKs -> a running g4f-server -> this plugin -> the emulator (127.0.0.1 only)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

WEATHER_RESPONSES = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def test_responses(openai_client: openai.AsyncOpenAI, emulator: Any) -> None:
    reply = await openai_client.responses.create(model="openai", input="hi responses")
    assert reply.output_text == "Echo: hi responses"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    async with openai_client.responses.stream(model="openai", input="stream me please") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert len(deltas) > 1  # the emulator's chunks, passed through
    assert final.output_text == "Echo: stream me please"
    follow = await openai_client.responses.create(
        model="openai", input="and again", previous_response_id=final.id
    )
    assert follow.output_text == "Echo: and again"
    assert [m["role"] for m in emulator.last("chat").json["messages"]] == [
        "user",
        "assistant",
        "user",
    ]


async def test_responses_tool_round_trip_streamed(openai_client: openai.AsyncOpenAI) -> None:
    async with openai_client.responses.stream(
        model="openai", input="Weather in Paris?", tools=[WEATHER_RESPONSES]
    ) as stream:
        kinds = [e.type async for e in stream]
        first = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    call = first.output[0]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"city": "Paris"}
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}
    second = await openai_client.responses.create(
        model="openai", input=[output], previous_response_id=first.id, tools=[WEATHER_RESPONSES]
    )
    assert second.output_text == "The tool said: Sunny"


async def test_messages(anthropic_client: anthropic.AsyncAnthropic) -> None:
    message = await anthropic_client.messages.create(
        model="openai", max_tokens=100, messages=[{"role": "user", "content": "hi claude"}]
    )
    assert message.content[0].text == "Echo: hi claude"
    async with anthropic_client.messages.stream(
        model="openai", max_tokens=100, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == final.content[0].text == "Echo: stream me"
    assert final.stop_reason == "end_turn"


async def test_messages_tool_use_streamed(anthropic_client: anthropic.AsyncAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    async with anthropic_client.messages.stream(
        model="openai", max_tokens=100, messages=messages, tools=[WEATHER_ANTHROPIC]
    ) as stream:
        first = await stream.get_final_message()
    use = first.content[0]
    assert first.stop_reason == "tool_use"
    assert use.type == "tool_use" and use.input == {"city": "Paris"}
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "Sunny"}
    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [result]},
    ]
    second = await anthropic_client.messages.create(
        model="openai", max_tokens=100, messages=messages, tools=[WEATHER_ANTHROPIC]
    )
    assert second.content[0].text == "The tool said: Sunny"


async def test_completions(openai_client: openai.AsyncOpenAI) -> None:
    reply = await openai_client.completions.create(model="openai", prompt="hi legacy")
    assert reply.choices[0].text == "Echo: hi legacy"
    stream = await openai_client.completions.create(model="openai", prompt="hi stream", stream=True)
    assert "".join([c.choices[0].text async for c in stream if c.choices]) == "Echo: hi stream"


async def test_upstream_errors_in_each_protocol(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, emulator: Any
) -> None:
    emulator.fail("chat", 429, retry_after="7")
    with pytest.raises(openai.RateLimitError):
        await openai_client.responses.create(model="openai", input="x")
    with pytest.raises(anthropic.RateLimitError) as limited:
        await anthropic_client.messages.create(
            model="openai", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.RateLimitError):
        await openai_client.completions.create(model="openai", prompt="x")
    # A streamed answer that fails in its first chunk: still before our first byte, so
    # an HTTP error in every protocol (the plugin holds the first chunk back).
    emulator.fail("chat", "error_chunk")
    with pytest.raises(openai.InternalServerError, match="upstream model crashed"):
        async with openai_client.responses.stream(model="openai", input="a long answer") as stream:
            async for _ in stream:
                pass
    with pytest.raises(anthropic.InternalServerError, match="upstream model crashed"):
        async with anthropic_client.messages.stream(
            model="openai", max_tokens=5, messages=[{"role": "user", "content": "a long answer"}]
        ) as messages:
            async for _ in messages.text_stream:
                pass
    with pytest.raises(openai.InternalServerError, match="upstream model crashed"):
        await openai_client.completions.create(model="openai", prompt="a long answer", stream=True)
