"""The Responses, Anthropic Messages and legacy completions protocols end to end: the
official SDKs -> the gateway -> this plugin -> the emulated upstream (127.0.0.1)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

MODEL = "llama-3.3-70b-versatile"
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
    reply = await openai_client.responses.create(model=MODEL, input="hi responses")
    assert reply.output_text == "Echo: hi responses"
    async with openai_client.responses.stream(model=MODEL, input="stream me please") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert len(deltas) > 1 and final.output_text == "Echo: stream me please"
    follow = await openai_client.responses.create(
        model=MODEL, input="and again", previous_response_id=final.id
    )
    assert follow.output_text == "Echo: and again"
    roles = [m["role"] for m in emulator.last("chat").json["messages"]]
    assert roles == ["user", "assistant", "user"]


async def test_responses_tools_and_json(openai_client: openai.AsyncOpenAI) -> None:
    first = await openai_client.responses.create(
        model=MODEL, input="Weather in Paris?", tools=[WEATHER_RESPONSES]
    )
    call = first.output[0]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}
    second = await openai_client.responses.create(
        model=MODEL, input=[output], previous_response_id=first.id, tools=[WEATHER_RESPONSES]
    )
    assert second.output_text == "The tool said: Sunny"
    shaped = await openai_client.responses.create(
        model=MODEL, input="seven", text={"format": {"type": "json_object"}}
    )
    assert json.loads(shaped.output_text) == {"answer": "seven"}


async def test_messages(anthropic_client: anthropic.AsyncAnthropic, emulator: Any) -> None:
    message = await anthropic_client.messages.create(
        model=MODEL,
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": "hi claude"}],
    )
    assert message.content[0].text == "Echo: hi claude"
    assert emulator.last("chat").json["messages"][0] == {"role": "system", "content": "be brief"}
    async with anthropic_client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Echo: stream me" and final.stop_reason == "end_turn"


async def test_messages_tool_use_and_images(anthropic_client: anthropic.AsyncAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=messages, tools=[WEATHER_ANTHROPIC]
    )
    use = first.content[0]
    assert first.stop_reason == "tool_use" and use.type == "tool_use"
    assert use.input == {"city": "Paris"}
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny"}],
        },
    ]
    second = await anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=messages, tools=[WEATHER_ANTHROPIC]
    )
    assert second.content[0].text == "The tool said: Sunny"
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    seen = await anthropic_client.messages.create(
        model="meta-llama/llama-4-scout-17b-16e-instruct",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [{"type": "image", "source": image}, {"type": "text", "text": "what"}],
            }
        ],
    )
    assert seen.content[0].text == "I see 1 image(s). Echo: what"


async def test_completions(openai_client: openai.AsyncOpenAI) -> None:
    reply = await openai_client.completions.create(model=MODEL, prompt="hi legacy")
    assert reply.choices[0].text == "Echo: hi legacy"
    stream = await openai_client.completions.create(model=MODEL, prompt="hi stream", stream=True)
    assert "".join([c.choices[0].text async for c in stream if c.choices]) == "Echo: hi stream"


async def test_upstream_errors_in_each_protocol(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, emulator: Any
) -> None:
    emulator.fail("chat", 500, times=3)
    with pytest.raises(openai.APIStatusError) as failed:
        await openai_client.responses.create(model=MODEL, input="x")
    assert failed.value.status_code == 502
    with pytest.raises(anthropic.APIStatusError):
        await anthropic_client.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.APIStatusError):
        await openai_client.completions.create(model=MODEL, prompt="x")
    # An error inside the stream after the answer started: an error event in each.
    emulator.fail("chat", "error_later", times=3)
    async with openai_client.responses.stream(model=MODEL, input="a b c d e") as stream:
        seen = [event async for event in stream]
    failed_event = seen[-1]
    assert failed_event.type == "response.failed"
    assert "upstream model crashed" in failed_event.response.error.message
    assert any(e.type == "response.output_text.delta" for e in seen)  # it had started
    with pytest.raises(anthropic.APIError, match="upstream model crashed"):
        async with anthropic_client.messages.stream(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "a b c d e"}]
        ) as messages:
            async for _ in messages.text_stream:
                pass
    with pytest.raises(openai.APIError, match="upstream model crashed"):
        stream = await openai_client.completions.create(
            model=MODEL, prompt="a b c d e", stream=True
        )
        async for _ in stream:
            pass
