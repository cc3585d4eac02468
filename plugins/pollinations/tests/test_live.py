"""The same scenarios against the real Pollinations.AI (needs internet).

Skipped unless pytest runs with ``--g4f-live`` (``./dev test --live``)::

    .venv/bin/python -m pytest plugins/pollinations --g4f-live -m live

Anonymous by default; set POLLINATIONS_API_KEY to run them on the gateway instead.
The upstream is slow and rate-limited per IP, so the tests run one call at a time and
check shapes, not exact words.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

import g4f_server_pollinations as plugin
from g4f_server import errors
from g4f_server.requests import ChatRequest
from g4f_server.testing import wav_bytes

pytestmark = pytest.mark.live


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    return wav_bytes(seconds, rate, tone_hz=440)


@pytest.fixture
async def client(start_gateway: Any, tmp_path: Path) -> AsyncIterator[openai.AsyncOpenAI]:
    base = await start_gateway(plugins=[plugin], data_dir=str(tmp_path), timeout=120)
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


async def test_live_models(ctx: Any) -> None:
    found = {m.id: m for m in await plugin.list_models(ctx())}
    assert any("chat" in m.capabilities for m in found.values())
    assert any("image" in m.capabilities for m in found.values())


async def test_live_chat_and_stream(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        messages=[{"role": "user", "content": "Reply with the single word: pong"}], model=""
    )
    assert "pong" in (reply.choices[0].message.content or "").lower()
    stream = await client.chat.completions.create(
        model="",
        messages=[{"role": "user", "content": "Count from 1 to 5."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        usage = chunk.usage or usage
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert "3" in text and usage is not None


async def test_live_tools(client: openai.AsyncOpenAI) -> None:
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather of a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = await client.chat.completions.create(
        model="", messages=messages, tools=tools, tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "paris" in json.loads(call.function.arguments)["city"].lower()
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 25 C"},
    ]
    second = await client.chat.completions.create(model="", messages=messages, tools=tools)
    assert "25" in (second.choices[0].message.content or "")


async def test_live_json_and_vision(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="",
        messages=[{"role": "user", "content": 'Return {"ok": true} as JSON.'}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)
    picture = (
        "https://upload.wikimedia.org/wikipedia/commons/4/47/PNG_transparency_demonstration_1.png"
    )
    reply = await client.chat.completions.create(
        model="",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this picture in five words."},
                    {"type": "image_url", "image_url": {"url": picture}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_live_images(client: openai.AsyncOpenAI, response_format: str) -> None:
    result = await client.images.generate(
        model="flux", prompt="a red apple", size="256x256", response_format=response_format
    )
    if response_format == "url":
        async with aiohttp.ClientSession() as http, http.get(result.data[0].url) as resp:
            assert resp.content_type.startswith("image/")
    else:
        assert len(base64.b64decode(result.data[0].b64_json)) > 100


async def test_live_speech_and_transcription(client: openai.AsyncOpenAI, tmp_path: Path) -> None:
    speech = await client.audio.speech.create(model="tts-1", voice="alloy", input="Hello world")
    (tmp_path / "hello.mp3").write_bytes(speech.content)
    assert len(speech.content) > 1000
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("tone.wav", tone_wav(), "audio/wav")
    )
    assert isinstance(result.text, str)


async def test_live_bad_key_is_auth_error(ctx: Any) -> None:
    request = ChatRequest(model="openai", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(errors.ProviderAuthError):
        async for _ in plugin.chat(request, ctx(api_key="sk_definitely_not_a_key")):
            pass
