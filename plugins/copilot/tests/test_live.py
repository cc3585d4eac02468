"""The gateway scenarios against the real copilot.microsoft.com.

Skipped unless pytest runs with ``--g4f-live`` (``./dev test --live``; needs internet):

    .venv/bin/python -m pytest plugins/copilot -m live --g4f-live

Vision needs a login: set ``COPILOT_ACCESS_TOKEN`` (the Bearer token from a HAR of a
logged-in copilot.microsoft.com session), otherwise that test is skipped.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

import g4f_server_copilot

pytestmark = pytest.mark.live

# A 1x1 red PNG is enough to prove the upload path.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def client(
    start_gateway: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[openai.AsyncOpenAI]:
    monkeypatch.delenv("COPILOT_URL", raising=False)
    base = await start_gateway(plugins=[g4f_server_copilot], data_dir=str(tmp_path))
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as c:
        yield c


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_live_chat(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="Copilot", messages=user("Reply with the single word: pong")
    )
    assert "pong" in resp.choices[0].message.content.lower()


async def test_live_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="Copilot", messages=user("Count from 1 to 5."), stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert "3" in text


async def test_live_reasoning(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="Think Deeper", messages=user("Is 221 a prime number? Answer yes or no.")
    )
    assert "no" in resp.choices[0].message.content.lower()


async def test_live_conversation(client: openai.AsyncOpenAI) -> None:
    extra = {"conversation_id": "live-1"}
    await client.chat.completions.create(
        model="Copilot", messages=user("Remember the word 'heliotrope'."), extra_body=extra
    )
    resp = await client.chat.completions.create(
        model="Copilot",
        messages=user("Which word did I ask you to remember?"),
        extra_body=extra,
    )
    assert "heliotrope" in resp.choices[0].message.content.lower()


async def test_live_image_generation(client: openai.AsyncOpenAI) -> None:
    result = await client.images.generate(model="Copilot", prompt="a red apple on a table")
    assert result.data[0].url or result.data[0].b64_json


async def test_live_vision(client: openai.AsyncOpenAI) -> None:
    image = "data:image/png;base64," + base64.b64encode(PNG).decode()
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What colour is this image?"},
                {"type": "image_url", "image_url": {"url": image}},
            ],
        }
    ]
    token = os.environ.get("COPILOT_ACCESS_TOKEN")
    if not token:
        with pytest.raises(openai.PermissionDeniedError):
            await client.chat.completions.create(model="Copilot", messages=messages)
        return
    resp = await client.chat.completions.create(
        model="Copilot", messages=messages, extra_headers={"X-Provider-Key": token}
    )
    assert "red" in resp.choices[0].message.content.lower()
