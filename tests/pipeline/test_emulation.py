"""Emulated tools and JSON through the real server: a provider whose model knows neither
answers from the instructions the kernel adds; its output is validated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from g4f_server import events, hookimpl
from g4f_server.provider import ModelInfo, ProviderInfo
from g4f_server.requests import ChatRequest

CHAT = "/v1/chat/completions"
WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        },
    },
}


@dataclass(eq=False)
class Plain:
    """A model without tools or JSON mode that follows instructions: ``answers`` are
    replied in turn, and every request it got is kept."""

    answers: list[str]
    seen: list[ChatRequest] = field(default_factory=list)

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name="Plain", default_model="plain-1")

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("plain-1")]

    @hookimpl
    async def chat(self, request: ChatRequest) -> AsyncIterator[events.ChatEvent]:
        self.seen.append(request)
        yield events.TextDelta(self.answers[min(len(self.seen), len(self.answers)) - 1])


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": "plain-1", "messages": [{"role": "user", "content": "Paris?"}], **extra}


async def test_without_emulation_the_capability_is_missing(make_client: Any) -> None:
    client = await make_client(Plain(["x"]))
    resp = await client.post(CHAT, json=ask(tools=WEATHER))
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_capability"


async def test_emulated_tool_call_is_validated(make_client: Any) -> None:
    call = '{"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}}}'
    provider = Plain([f"Sure.\n```json\n{call}\n```"])
    client = await make_client(provider, emulate=["tools"])
    resp = await client.post(CHAT, json=ask(tools=WEATHER))
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-G4F-Emulated"] == "tools"
    choice = (await resp.json())["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    function = choice["message"]["tool_calls"][0]["function"]
    assert function["name"] == "get_weather"
    assert json.loads(function["arguments"]) == {"location": "Paris"}
    sent = provider.seen[0]
    assert sent.tools is None and "get_weather" in sent.messages[0].text()


async def test_a_call_that_breaks_the_schema_stays_text(make_client: Any) -> None:
    bad = '{"tool_call": {"name": "get_weather", "arguments": {"location": 7}}}'
    client = await make_client(Plain([bad]))
    resp = await client.post(CHAT, json=ask(tools=WEATHER, emulate=["tools"]))
    assert resp.status == 200
    message = (await resp.json())["choices"][0]["message"]
    assert "tool_calls" not in message and message["content"] == bad


async def test_emulated_json_schema_with_one_retry(make_client: Any) -> None:
    provider = Plain(['{"name": "Ann"}', 'Here: {"name": "Ann", "age": 31}'])
    client = await make_client(provider, emulate=["json"])
    resp = await client.post(CHAT, json=ask(response_format=PERSON, stream=True))
    assert resp.status == 200
    assert resp.headers["X-G4F-Emulated"] == "json"
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in (await resp.text()).splitlines()
        if line.startswith("data: {") and json.loads(line[6:])["choices"]
    )
    assert json.loads(text) == {"name": "Ann", "age": 31}
    assert len(provider.seen) == 2  # the retry showed the model its mistake
    assert "'age' is a required property" in provider.seen[1].messages[-1].text()


async def test_json_that_never_validates_is_a_502(make_client: Any) -> None:
    client = await make_client(Plain(["no json here"]), emulate=["json"])
    resp = await client.post(CHAT, json=ask(response_format={"type": "json_object"}))
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "emulation_failed"
