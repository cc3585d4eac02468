"""The Responses, Anthropic Messages and legacy completions protocols end to end: the
official SDKs -> a running g4f-server -> this plugin -> the emulator (127.0.0.1 only)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

HELLO = "Hello from Copilot (turn 1)."


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_responses(copilot: Any, openai_client: openai.AsyncOpenAI) -> None:
    reply = await openai_client.responses.create(model="Copilot", input="Hi")
    assert reply.output_text == HELLO
    assert copilot.texts("conv-0") == ["Hi"]
    async with openai_client.responses.stream(model="Think Deeper", input="Why?") as stream:
        final = await stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Let me think. Done thinking."
    assert final.output_text == HELLO
    cited = await openai_client.responses.create(model="Search", input="News?")
    annotation = cited.output[-1].content[0].annotations[0]
    assert annotation.type == "url_citation"
    assert annotation.url == "https://example.org/source"


async def test_messages(anthropic_client: anthropic.AsyncAnthropic) -> None:
    message = await anthropic_client.messages.create(
        model="Copilot", max_tokens=100, messages=user("Hi")
    )
    assert message.content[0].text == HELLO
    async with anthropic_client.messages.stream(
        model="Think Deeper", max_tokens=100, messages=user("Why?")
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == HELLO
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think. Done thinking."
    cited = await anthropic_client.messages.create(
        model="Search", max_tokens=100, messages=user("News?")
    )
    assert cited.content[0].citations[0].url == "https://example.org/source"


async def test_completions(openai_client: openai.AsyncOpenAI) -> None:
    reply = await openai_client.completions.create(model="Copilot", prompt="Hi")
    assert reply.choices[0].text == HELLO
    stream = await openai_client.completions.create(model="Copilot", prompt="Hi", stream=True)
    assert "".join([c.choices[0].text async for c in stream if c.choices]) == HELLO


async def test_silence_before_the_first_byte(
    copilot: Any, openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    copilot.script += ["silence"] * 3
    with pytest.raises(openai.InternalServerError) as info:
        await openai_client.responses.create(model="Copilot", input="Hi")
    assert info.value.status_code == 504
    with pytest.raises(anthropic.InternalServerError) as silent:
        await anthropic_client.messages.create(model="Copilot", max_tokens=5, messages=user("Hi"))
    assert silent.value.status_code == 504
    assert silent.value.body["error"]["type"] == "api_error"
    with pytest.raises(openai.InternalServerError):
        await openai_client.completions.create(model="Copilot", prompt="Hi")


async def test_stall_after_the_first_byte(
    copilot: Any, openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    copilot.script += ["stall"] * 3
    async with openai_client.responses.stream(model="Copilot", input="Hi") as stream:
        events = [e async for e in stream]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Partial"
    assert events[-1].type == "response.failed"
    assert "silent" in events[-1].response.error.message
    seen = []
    with pytest.raises(anthropic.APIStatusError, match="silent"):
        async with anthropic_client.messages.stream(
            model="Copilot", max_tokens=5, messages=user("Hi")
        ) as messages:
            async for text in messages.text_stream:
                seen.append(text)
    assert "".join(seen) == "Partial"
    stream_ = await openai_client.completions.create(model="Copilot", prompt="Hi", stream=True)
    with pytest.raises(openai.APIError, match="silent"):
        async for _ in stream_:
            pass
