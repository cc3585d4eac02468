"""The Responses API through the official openai SDK (and the Agents SDK) against a
running gateway, with the kernel's test providers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from pydantic import BaseModel

from g4f_server import errors, events, hookimpl
from g4f_server.provider import ModelInfo, ProviderInfo
from tests.fake_providers import Scripted

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}},
}


@pytest.fixture
async def sdk(start_gateway: Any, tmp_path: Any) -> AsyncIterator[Any]:
    made: list[Any] = []

    async def make(*plugins: object, sdk_key: str = "unused", **config: Any) -> openai.AsyncOpenAI:
        base = await start_gateway(plugins=list(plugins), data_dir=str(tmp_path), **config)
        made.append(openai.AsyncOpenAI(base_url=base + "/v1", api_key=sdk_key, max_retries=0))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def raw_events(client: openai.AsyncOpenAI, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The streamed events as they are on the wire (``event:`` name and data)."""
    url = str(client.base_url).rstrip("/") + "/responses"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        text = await resp.text()
    out = []
    for block in filter(None, text.split("\n\n")):
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: ")
        event = json.loads(data[6:])
        assert event["type"] == name[7:]
        out.append(event)
    return out


async def test_create_and_retrieve(sdk: Any) -> None:
    echo = Scripted(usage=True)
    client = await sdk(echo)
    reply = await client.responses.create(
        model="echo-1", input="hi responses", instructions="Be brief.", metadata={"k": "v"}
    )
    assert reply.object == "response"
    assert reply.status == "completed"
    assert reply.output_text == "echo: hi responses"
    assert reply.output[0].type == "message"
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (11, 3)
    assert reply.usage.total_tokens == 14
    assert reply.instructions == "Be brief."
    assert echo.seen[-1].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi responses"},
    ]
    again = await client.responses.retrieve(reply.id)
    assert again.id == reply.id
    assert again.output_text == "echo: hi responses"
    assert again.metadata == {"k": "v"}
    items = await client.responses.input_items.list(reply.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == "hi responses"


async def test_response_ids_sort_by_age(sdk: Any) -> None:
    # The store trims its oldest responses by neighbouring keys only when ids sort by age.
    client = await sdk(Scripted())
    ids = []
    for n in range(6):
        ids.append((await client.responses.create(model="echo-1", input=f"n{n}")).id)
        await asyncio.sleep(0.002)  # the ids' clock counts milliseconds
    assert ids == sorted(ids)
    assert len(set(ids)) == 6
    assert all(i.startswith("resp_") for i in ids)


async def test_stream_events_and_final_response(sdk: Any) -> None:
    client = await sdk(Scripted())
    async with client.responses.stream(model="echo-1", input="one two three") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == "echo: one two three"
    assert final.status == "completed"
    assert final.output_text == "echo: one two three"
    assert (await client.responses.retrieve(final.id)).output_text == final.output_text

    events = await raw_events(client, {"model": "echo-1", "input": "a b", "stream": True})
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "echo: a b"


async def test_a_long_stream_numbers_every_delta(sdk: Any) -> None:
    # Past the renderer's table of encoded sequence numbers (512): numbered the same way.
    client = await sdk(Scripted())
    words = " ".join(f"w{i}" for i in range(600))
    events = await raw_events(client, {"model": "echo-1", "input": words, "stream": True})
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 520
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in deltas) == "echo: " + words
    assert events[-1]["response"]["output_text"] == "echo: " + words


async def test_reasoning_is_a_summary(sdk: Any) -> None:
    client = await sdk(Scripted())
    reply = await client.responses.create(model="thinker", input="why")
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    assert reply.output[0].summary[0].text == "Let me think. "
    async with client.responses.stream(model="thinker", input="why") as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert "response.reasoning_summary_text.done" in kinds
    assert [item.type for item in final.output] == ["reasoning", "message"]


class Echoed(BaseModel):
    echo: str


class Fixed:
    """Answers every request with ``text`` and finish reason ``finish``; records them."""

    def __init__(self, text: str, finish: str = "stop") -> None:
        self.text, self.finish = text, finish
        self.requests: list[Any] = []

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name="Fixed", default_model="fixed-1")

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("fixed-1", frozenset({"chat", "json_schema"}))]

    @hookimpl
    async def chat(self, request: Any) -> Any:
        self.requests.append(request)
        yield events.TextDelta(self.text)
        yield events.Finish(self.finish)  # type: ignore[arg-type]


async def test_parse_with_text_format(sdk: Any) -> None:
    fixed = Fixed('{"echo": "data"}')
    client = await sdk(fixed)
    reply = await client.responses.parse(model="fixed-1", input="data", text_format=Echoed)
    assert reply.output_parsed == Echoed(echo="data")
    assert fixed.requests[-1].response_format.type == "json_schema"
    assert fixed.requests[-1].response_format.json_schema["name"] == "Echoed"


async def test_function_tool_round_trip(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    first = await client.responses.create(model="echo-1", input="Paris", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"echo": "Paris"}
    assert echo.seen[-1].messages == [{"role": "user", "content": "Paris"}]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    # The whole history sent back, as stateless clients do...
    second = await client.responses.create(
        model="echo-1", input=[{"role": "user", "content": "Paris"}, call, output], tools=[WEATHER]
    )
    assert second.output_text == "echo: tool said sunny"
    # ...or only the new item, continuing the stored response.
    third = await client.responses.create(
        model="echo-1", previous_response_id=first.id, input=[output], tools=[WEATHER]
    )
    assert third.output_text == "echo: tool said sunny"
    assert third.previous_response_id == first.id
    assert echo.seen[-1].messages[0] == {"role": "user", "content": "Paris"}
    assert echo.seen[-1].messages[1]["tool_calls"][0]["id"] == call.call_id
    assert echo.seen[-1].messages[2] == {
        "role": "tool",
        "tool_call_id": call.call_id,
        "content": "sunny",
    }


async def test_streamed_tool_call(sdk: Any) -> None:
    client = await sdk(Scripted())
    async with client.responses.stream(model="echo-1", input="Rome", tools=[WEATHER]) as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    call = final.output[0]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"echo": "Rome"}


async def test_previous_response_id_sends_the_earlier_turn(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    first = await client.responses.create(model="echo-1", input="my name is Ada")
    second = await client.responses.create(
        model="echo-1", input="what is it?", previous_response_id=first.id, instructions="Hi."
    )
    assert echo.seen[-1].messages == [
        {"role": "system", "content": "Hi."},
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "echo: my name is Ada"},
        {"role": "user", "content": "what is it?"},
    ]
    # A third turn continues the second (which holds the first).
    await client.responses.create(
        model="echo-1", input="again", previous_response_id=second.id, stream=False
    )
    assert len(echo.seen[-1].messages) == 5


async def test_stored_responses_are_scoped_and_deletable(sdk: Any) -> None:
    client = await sdk(Scripted())
    reply = await client.responses.create(model="echo-1", input="secret")
    other = client.with_options(default_headers={"X-Provider-Key": "someone-else"})
    with pytest.raises(openai.NotFoundError):
        await other.responses.retrieve(reply.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.create(model="echo-1", input="x", previous_response_id=reply.id)
    await client.responses.delete(reply.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(reply.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(reply.id)
    unstored = await client.responses.create(model="echo-1", input="x", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.retrieve("resp_missing")
    assert info.value.code == "response_not_found"


async def test_unsupported_input_is_a_clear_400(sdk: Any) -> None:
    client = await sdk(Scripted())
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="echo-1",
            input="x",
            tools=[{"type": "web_search_preview"}],
            tool_choice={"type": "web_search_preview"},
        )
    assert "web_search_preview" in info.value.message
    assert info.value.code == "unsupported_tool"
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="echo-1", input=[{"type": "item_reference", "id": "msg_1"}]
        )
    assert "item_reference" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="echo-1", input=[])
    assert info.value.param == "input"


async def test_image_input_reaches_the_provider(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    url = "data:image/png;base64,iVBORw0KGgo="
    content = [
        {"type": "input_text", "text": "what is it"},
        {"type": "input_image", "image_url": url, "detail": "low"},
    ]
    await client.responses.create(model="echo-1", input=[{"role": "user", "content": content}])
    assert echo.seen[-1].messages[0]["content"] == [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]


async def test_max_output_tokens_is_incomplete(sdk: Any) -> None:
    cut = Fixed("partial", finish="length")
    client = await sdk(cut)
    reply = await client.responses.create(model="fixed-1", input="x", max_output_tokens=5)
    assert cut.requests[-1].token_limit == 5
    assert reply.status == "incomplete"
    assert reply.incomplete_details is not None
    assert reply.incomplete_details.reason == "max_output_tokens"
    events_ = await raw_events(
        client, {"model": "fixed-1", "input": "x", "stream": True, "max_output_tokens": 5}
    )
    assert events_[-1]["type"] == "response.incomplete"


async def test_failure_before_the_first_byte(sdk: Any) -> None:
    client = await sdk(Scripted(fail=errors.ProviderError("upstream down")))
    with pytest.raises(openai.InternalServerError) as info:
        await client.responses.create(model="echo-1", input="x")
    assert info.value.status_code == 502
    with pytest.raises(openai.InternalServerError):
        async with client.responses.stream(model="echo-1", input="x") as stream:
            async for _ in stream:
                pass
    client = await sdk(Scripted(fail=errors.ProviderRateLimitError("busy", retry_after=3)))
    with pytest.raises(openai.RateLimitError):
        await client.responses.create(model="echo-1", input="x")


async def test_failure_after_the_first_byte_is_response_failed(sdk: Any) -> None:
    client = await sdk(Scripted(fail_after=1))
    events_ = await raw_events(client, {"model": "echo-1", "input": "a b c", "stream": True})
    kinds = [e["type"] for e in events_]
    assert kinds[-1] == "response.failed"
    assert "response.completed" not in kinds
    failed = events_[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "provider_error"
    async with client.responses.stream(model="echo-1", input="a b c") as stream:
        last = [e async for e in stream][-1]
    assert last.type == "response.failed"
    with pytest.raises(RuntimeError):
        await stream.get_final_response()


async def test_per_provider_route_and_x_api_key(
    sdk: Any, start_gateway: Any, tmp_path: Any
) -> None:
    base = await start_gateway(
        plugins=[Scripted(), Scripted(name="Other")], data_dir=str(tmp_path), api_key="k"
    )
    client = openai.AsyncOpenAI(base_url=base + "/api/Other", api_key="k", max_retries=0)
    reply = await client.responses.create(model="", input="hi")
    assert reply.model_extra is not None and reply.model_extra["provider"] == "Other"
    async with aiohttp.ClientSession() as http:
        body = {"model": "echo-1", "input": "hi"}
        async with http.post(base + "/v1/responses", json=body, headers={"x-api-key": "k"}) as r:
            assert r.status == 200
        async with http.post(base + "/v1/responses", json=body, headers={"x-api-key": "no"}) as r:
            assert r.status == 401


async def test_agents_sdk_runner_with_a_function_tool(sdk: Any) -> None:
    import agents

    agents.set_tracing_disabled(True)
    client = await sdk(Scripted())
    calls: list[str] = []

    @agents.function_tool
    def get_weather(echo: str) -> str:
        """The weather in a city."""
        calls.append(echo)
        return "sunny"

    agent = agents.Agent(
        name="Weather",
        instructions="Answer with the weather.",
        model=agents.OpenAIResponsesModel(model="echo-1", openai_client=client),
        tools=[get_weather],
    )
    result = await agents.Runner.run(agent, "Oslo")
    assert calls == ["Oslo"]
    assert result.final_output == "echo: tool said sunny"


async def test_a_stored_response_is_found_at_once_by_another_worker(
    make_client: Any, tmp_path: Any
) -> None:
    """Read-your-writes on the embedded store: the moment ``response.completed`` arrives
    on gateway A, gateway B (another app on the same data folder: its own connections)
    finds it, another process reading the SQLite file too, and it outlives A's shutdown."""
    import subprocess
    import sys

    a = await make_client(Scripted())
    b = await make_client(Scripted())
    body = {"model": "echo-1", "input": "keep me", "stream": True}
    async with a.post("/v1/responses", json=body) as resp:
        seen = b""
        while b"event: response.completed" not in seen:
            seen += await resp.content.readany()
        response_id = json.loads(seen.split(b"data: ", 1)[1].split(b"\n", 1)[0])["response"]["id"]
        got = await b.get(f"/v1/responses/{response_id}")  # before A's stream has ended
        assert got.status == 200
        assert (await got.json())["output_text"] == "echo: keep me"
    query = (
        "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); print(db.execute("
        "'SELECT COUNT(*) FROM stored_response WHERE key LIKE ?', ('%:' + sys.argv[2],)"
        ").fetchone()[0])"
    )
    db = str(tmp_path / "conversations.sqlite3")
    out = subprocess.run([sys.executable, "-c", query, db, response_id], capture_output=True)
    assert out.stdout.strip() == b"1", out.stderr
    await a.close()  # a normal shutdown
    got = await b.get(f"/v1/responses/{response_id}")
    assert got.status == 200
    plain = await b.post("/v1/responses", json={"model": "echo-1", "input": "and me"})
    plain_id = (await plain.json())["id"]
    await b.close()
    c = await make_client(Scripted())  # a fresh start on the same folder
    for rid in (response_id, plain_id):
        assert (await c.get(f"/v1/responses/{rid}")).status == 200
