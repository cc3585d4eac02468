"""Chat through the real gateway (/v1/chat/completions) -> the plugin -> an emulated
upstream with Groq's quirks: answers, streaming, tools, vision, JSON modes, reasoning,
and what the plugin sends upstream."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

MODEL = "llama-3.3-70b-versatile"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def test_chat_and_what_goes_upstream(
    openai_client: openai.AsyncOpenAI, emulator: Any
) -> None:
    reply = await openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hello there", "name": "ann"}],
        temperature=0.5,
        stop=["zzz"],
        seed=7,
        max_completion_tokens=50,
        extra_body={"logprobs": True, "top_k": 3, "conversation_id": "c1"},
    )
    assert reply.choices[0].message.content == "Echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 12  # the upstream's count
    sent = emulator.last("chat").json
    # Not streamed to the client: one JSON completion asked upstream too (no usage chunk).
    assert sent["stream"] is False and "stream_options" not in sent
    assert sent["model"] == MODEL and sent["temperature"] == 0.5 and sent["seed"] == 7
    assert sent["stop"] == ["zzz"] and sent["max_completion_tokens"] == 50
    assert sent["top_k"] == 3  # unknown fields travel on
    # Groq answers 400 to these (documented): the preset leaves them out.
    assert "logprobs" not in sent and "name" not in sent["messages"][0]
    assert "conversation_id" not in sent and "provider" not in sent  # gateway fields
    assert emulator.last("chat").headers["Authorization"] == "Bearer test-key"


async def test_streaming_one_chunk_per_upstream_word(openai_client: openai.AsyncOpenAI) -> None:
    stream = await openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    texts, usage, finish = [], None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(texts) == "Echo: one two three"
    assert len([t for t in texts if t]) >= 4  # streamed, not one piece
    assert finish == "stop" and usage is not None and usage.prompt_tokens == 7


async def test_tool_round_trip(openai_client: openai.AsyncOpenAI, emulator: Any) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await openai_client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], tool_choice="auto"
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    assert emulator.last("chat").json["tools"][0]["function"]["name"] == "get_weather"
    assert emulator.last("chat").json["tool_choice"] == "auto"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
    ]
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "The tool said: Sunny"
    sent = emulator.last("chat").json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[2]["tool_call_id"] == call.id


async def test_vision_parts_reach_a_vision_model(
    openai_client: openai.AsyncOpenAI, emulator: Any
) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    content: Any = [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": image}},
    ]
    reply = await openai_client.chat.completions.create(
        model="meta-llama/llama-4-scout-17b-16e-instruct",
        messages=[{"role": "user", "content": content}],
    )
    assert reply.choices[0].message.content == "I see 1 image(s). Echo: what is it"
    assert emulator.last("chat").json["messages"][0]["content"][1]["image_url"]["url"] == image
    # A model the preset does not know to read images is not asked to.
    with pytest.raises(openai.BadRequestError, match="vision"):
        await openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": content}]
        )


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object"},
        {
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "schema": {"type": "object", "properties": {"answer": {"type": "string"}}},
            },
        },
    ],
)
async def test_json_modes_pass_through(
    openai_client: openai.AsyncOpenAI, emulator: Any, response_format: Any
) -> None:
    reply = await openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "forty two"}],
        response_format=response_format,
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": "forty two"}
    assert emulator.last("chat").json["response_format"] == response_format


async def test_reasoning_streams_as_reasoning(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        body = {
            "model": "deep-think-r1",
            "messages": [{"role": "user", "content": "why"}],
            "stream": True,
        }
        async with http.post(gateway_url + "/v1/chat/completions", json=body) as resp:
            raw = (await resp.read()).decode()
    chunks = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    reasoning = "".join(d.get("reasoning_content") or d.get("reasoning") or "" for d in deltas)
    assert reasoning == "Let me think."
    assert "".join(d.get("content") or "" for d in deltas) == "Echo: why"


async def test_the_clients_own_key_wins(openai_client: openai.AsyncOpenAI, emulator: Any) -> None:
    emulator.key = "client-key"
    reply = await openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "mine"}],
        extra_headers={"X-Provider-Key": "client-key"},
    )
    assert reply.choices[0].message.content == "Echo: mine"
    assert emulator.last("chat").headers["Authorization"] == "Bearer client-key"


async def test_each_call_sends_its_own_key_and_accept(
    openai_client: openai.AsyncOpenAI, emulator: Any
) -> None:
    """The configured key's URL and headers are kept per Accept (chat._route): a client's
    own key, the configured one and a stream's Accept never leak into another call."""
    hi = [{"role": "user", "content": "hi"}]
    for key, streamed in [("client-key", False), (None, False), ("client-key", True), (None, True)]:
        emulator.key = key or "test-key"
        extra = {"X-Provider-Key": key} if key else {}
        reply = await openai_client.chat.completions.create(
            model=MODEL, messages=hi, stream=streamed, extra_headers=extra
        )
        if streamed:
            _ = [chunk async for chunk in reply]
        seen = emulator.last("chat").headers
        assert seen["Authorization"] == f"Bearer {key or 'test-key'}", (key, streamed)
        assert seen["Accept"] == ("text/event-stream" if streamed else "application/json")
        assert seen["Content-Type"] == "application/json"


async def test_models_listed_with_capabilities_and_free_marks(
    gateway_url: str, openai_client: openai.AsyncOpenAI
) -> None:
    ids = {m.id async for m in openai_client.models.list()}
    assert {MODEL, "deep-think-r1", "Groq"} <= ids
    async with aiohttp.ClientSession() as http, http.get(gateway_url + "/api/Groq/models") as resp:
        listed = {m["id"]: m for m in (await resp.json())["data"]}
    assert listed[MODEL]["free"] is True  # Groq's models are on its free plan
    assert listed["meta-llama/llama-4-scout-17b-16e-instruct"]["vision"] is True
    assert listed["text-embed-small"]["embedding"] is True
    # Served as Name:model too.
    reply = await openai_client.chat.completions.create(
        model=f"Groq:{MODEL}", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Echo: hi"


def test_a_whole_completion_keeps_its_tool_calls_apart() -> None:
    """A non-streamed message's tool calls carry no "index" (OpenAI's shape): each is
    its own call, not the arguments of the first one joined together."""
    from g4f_server import events
    from g4f_server_openai_compat.chat import StreamReader
    from g4f_server_openai_compat.upstreams import resolve

    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
        for i, (n, a) in enumerate([("get_weather", '{"city":"Paris"}'), ("get_time", "{}")])
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    completion = {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
    seen = StreamReader(resolve("groq", {"api_key": "k"}, {})).whole(completion)
    deltas = [e for e in seen if isinstance(e, events.ToolCallDelta)]
    assert [(d.index, d.id, d.name) for d in deltas] == [
        (0, "call_0", "get_weather"),
        (1, "call_1", "get_time"),
    ]
    assert seen[-1] == events.Finish("tool_calls")


async def test_other_protocols_reach_the_upstream_as_openai_messages(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, emulator: Any
) -> None:
    """What the plugin sends for a Responses follow-up (the stored turns as messages) and
    an Anthropic request (its system prompt, a base64 image as an image_url part). The
    protocols' answers themselves are the conformance suite's."""
    first = await openai_client.responses.create(model=MODEL, input="hi responses")
    follow = await openai_client.responses.create(
        model=MODEL, input="and again", previous_response_id=first.id
    )
    assert follow.output_text == "Echo: and again"
    sent = emulator.last("chat").json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "Echo: hi responses"
    message = await anthropic_client.messages.create(
        model=MODEL, max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "Echo: hi"
    assert emulator.last("chat").json["messages"][0] == {"role": "system", "content": "be brief"}
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
    part = emulator.last("chat").json["messages"][0]["content"][0]
    assert part["image_url"]["url"] == "data:image/png;base64,iVBORw0KGgo="


async def test_the_read_that_ends_the_stream_comes_with_the_finish(
    aiohttp_server: Any, provider_context: Any
) -> None:
    """An upstream stream that arrives in one read (text, usage, [DONE]) is one batch,
    Finish included: one write to the client instead of two."""
    from aiohttp import web

    from g4f_server import events
    from g4f_server.requests import ChatRequest
    from g4f_server_openai_compat.chat import chat
    from g4f_server_openai_compat.upstreams import resolve

    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    body = b"".join(b"data: %s\n\n" % json.dumps(c).encode() for c in (chunk, last, usage))

    async def completions(request: web.Request) -> web.Response:
        return web.Response(body=body + b"data: [DONE]\n\n", content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    server = await aiohttp_server(app, host="127.0.0.1")
    up = resolve("groq", {"api_key": "k", "base_url": str(server.make_url("/v1"))}, {})
    request = ChatRequest(model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True)
    batches = [batch async for batch in chat(up, request, provider_context())]
    assert batches == [
        [events.TextDelta("Hi"), events.Usage(3, 1), events.Finish("length")],
    ]
