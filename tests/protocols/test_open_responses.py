"""The Open Responses compliance cases, by name, against a running gateway: each case's
request as the specification's published suite sends it, its checks written here, and the
response object validated against the schema written from the specification
(``open_responses_schema``). Then the WebSocket mode and compaction cases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from g4f_server import errors
from tests.fake_providers import Scripted
from tests.protocols.open_responses_schema import check_compaction, check_response

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The city"}},
        "required": ["location"],
    },
}
# A 1x1 PNG.
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


CASES: dict[str, dict[str, Any]] = {
    "basic-response": {"input": [user("Say hello in exactly 3 words.")]},
    "system-prompt": {
        "input": [
            {"type": "message", "role": "system", "content": "You are a pirate."},
            user("Say hello."),
        ]
    },
    "tool-calling": {"input": [user("What's the weather in San Francisco?")], "tools": [WEATHER]},
    "image-input": {
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What do you see?"},
                    {"type": "input_image", "image_url": PNG},
                ],
            }
        ]
    },
    "multi-turn": {
        "input": [
            user("My name is Alice."),
            {"type": "message", "role": "assistant", "content": "Hello Alice!"},
            user("What is my name?"),
        ]
    },
}


@pytest.fixture
async def base(start_gateway: Any, tmp_path: Any) -> str:
    return await start_gateway(plugins=[Scripted()], data_dir=str(tmp_path))  # type: ignore[no-any-return]


async def sse(base: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/v1/responses", json={**body, "stream": True}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        text = await resp.text()
    out = []
    for block in filter(None, text.split("\n\n")):
        name, data = block.split("\n")
        event = json.loads(data[len("data: ") :])
        assert name == f"event: {event['type']}"
        out.append(event)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
async def test_compliance_case(base: str, case: str) -> None:
    body = {"model": "echo-1", **CASES[case]}
    async with aiohttp.ClientSession() as http, http.post(f"{base}/v1/responses", json=body) as r:
        assert r.status == 200, await r.text()
        reply = await r.json()
    check_response(reply)
    assert reply["output"], "no output items"
    if case == "tool-calling":
        assert any(item["type"] == "function_call" for item in reply["output"])
    else:
        assert reply["status"] == "completed"
        assert reply["output_text"]


@pytest.mark.parametrize("case", ["streaming-response", "tool-calling-streaming"])
async def test_streamed_compliance_case(base: str, case: str) -> None:
    body = {"model": "echo-1", "input": [user("Count from 1 to 5.")]}
    if case == "tool-calling-streaming":
        body = {"model": "echo-1", **CASES["tool-calling"]}
    events = await sse(base, body)
    for event in events:
        if "response" in event:
            check_response(event["response"])
    final = events[-1]
    assert final["type"] == "response.completed"
    assert final["response"]["status"] == "completed"
    if case == "tool-calling-streaming":
        kinds = [e["type"] for e in events]
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
        for kind in ("response.output_item.added", "response.output_item.done"):
            assert any(e["type"] == kind and e["item"]["type"] == "function_call" for e in events)


# --- WebSocket mode


class Socket:
    """One WebSocket connection to /v1/responses: ``create`` sends a response.create and
    returns its events up to the terminal one."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def create(self, **body: Any) -> list[dict[str, Any]]:
        await self.ws.send_json({"type": "response.create", "model": "echo-1", **body})
        return await self.events()

    async def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            message = await self.ws.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            out.append(json.loads(message.data))
            if out[-1]["type"] in ("response.completed", "response.failed", "error",
                                   "response.incomplete"):  # fmt: skip
                return out


@pytest.fixture
async def socket(base: str) -> AsyncIterator[Socket]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base.replace('http', 'ws')}/v1/responses") as ws,
    ):
        yield Socket(ws)


async def test_websocket_basic(base: str, socket: Socket) -> None:
    events = await socket.create(input=[user("Say hello.")])
    over_sse = await sse(base, {"model": "echo-1", "input": [user("Say hello.")]})
    assert [e["type"] for e in events] == [e["type"] for e in over_sse]  # the same grammar
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        if "response" in event:
            check_response(event["response"])
    assert events[-1]["response"]["output_text"] == "echo: Say hello."


async def test_websocket_sequential_responses(socket: Socket) -> None:
    await socket.ws.send_json({"type": "response.create", "model": "echo-1", "input": "one"})
    await socket.ws.send_json({"type": "response.create", "model": "echo-1", "input": "two"})
    first, second = await socket.events(), await socket.events()
    assert first[-1]["response"]["output_text"] == "echo: one"
    assert second[-1]["response"]["output_text"] == "echo: two"
    assert first[-1]["response"]["id"] != second[-1]["response"]["id"]


@pytest.mark.parametrize("store", [True, False])
async def test_websocket_continuation(socket: Socket, store: bool) -> None:
    first = (await socket.create(input="my name is Ada", store=store))[-1]["response"]
    second = await socket.create(input="what is it?", previous_response_id=first["id"], store=store)
    response = second[-1]["response"]
    assert response["status"] == "completed" and response["previous_response_id"] == first["id"]
    # A chain: the third continues the second, which holds the first.
    third = await socket.create(input="again", previous_response_id=response["id"], store=store)
    assert third[-1]["type"] == "response.completed"


async def test_websocket_store_false_lives_on_its_connection(base: str, socket: Socket) -> None:
    first = (await socket.create(input="secret", store=False))[-1]["response"]
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base.replace('http', 'ws')}/v1/responses") as other,
    ):
        events = await Socket(other).create(input="x", previous_response_id=first["id"])
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "previous_response_not_found"
    # On its own connection it still continues.
    again = await socket.create(input="y", previous_response_id=first["id"], store=False)
    assert again[-1]["type"] == "response.completed"


async def test_websocket_previous_response_not_found(socket: Socket) -> None:
    events = await socket.create(input="x", previous_response_id="resp_unknown")
    assert len(events) == 1
    error = events[0]
    assert error["type"] == "error"
    assert error["error"]["code"] == "previous_response_not_found"
    assert error["error"]["param"] == "previous_response_id"
    assert error["status"] == 404
    # The connection goes on.
    assert (await socket.create(input="fine"))[-1]["type"] == "response.completed"


async def test_websocket_failed_continuation_evicts_the_cached_response(socket: Socket) -> None:
    first = (await socket.create(input="keep me", store=False))[-1]["response"]
    bad = await socket.create(
        input=[{"type": "item_reference", "id": "msg_1"}], previous_response_id=first["id"]
    )
    assert bad[-1]["type"] == "error" and bad[-1]["status"] == 400
    retry = await socket.create(input="again", previous_response_id=first["id"], store=False)
    assert retry[-1]["error"]["code"] == "previous_response_not_found"


async def test_websocket_failed_response_evicts_too(start_gateway: Any, tmp_path: Any) -> None:
    base = await start_gateway(plugins=[Scripted(fail_after=2, fail=errors.ProviderError("cut"))],
                               data_dir=str(tmp_path))  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base.replace('http', 'ws')}/v1/responses") as ws,
    ):
        socket = Socket(ws)
        # "echo:" and one empty word: ends before the failure point (the third word).
        first = (await socket.create(input="", store=False))[-1]
        assert first["type"] == "response.completed", first
        failed = await socket.create(input="a b c", previous_response_id=first["response"]["id"])
        assert failed[-1]["type"] == "response.failed"
        retry = await socket.create(input="x", previous_response_id=first["response"]["id"])
        assert retry[-1]["error"]["code"] == "previous_response_not_found"


async def test_websocket_auth_is_the_upgrade_requests(start_gateway: Any, tmp_path: Any) -> None:
    base = await start_gateway(plugins=[Scripted()], data_dir=str(tmp_path), api_key="k")
    url = f"{base.replace('http', 'ws')}/v1/responses"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url, headers={"Authorization": "Bearer wrong"})
        assert info.value.status == 401
        async with http.ws_connect(url, headers={"Authorization": "Bearer k"}) as ws:
            assert (await Socket(ws).create(input="hi"))[-1]["type"] == "response.completed"
        # A GET without the upgrade is no response: 405, saying why.
        async with http.get(base + "/v1/responses", headers={"Authorization": "Bearer k"}) as r:
            assert r.status == 405 and "WebSocket" in (await r.json())["error"]["message"]


async def test_websocket_bad_messages_are_error_events(socket: Socket) -> None:
    await socket.ws.send_str("not json")
    assert (await socket.events())[0]["error"]["type"] == "invalid_request_error"
    await socket.ws.send_json({"type": "session.update"})
    assert (await socket.events())[0]["error"]["code"] == "unknown_event"
    events = await socket.create(input="x", temperature=9)
    assert events[0]["status"] == 400 and events[0]["error"]["param"] == "temperature"


async def test_websocket_warm_up_without_generating(socket: Socket) -> None:
    warm = await socket.create(input="my name is Ada", generate=False)
    assert [e["type"] for e in warm] == ["response.created", "response.in_progress",
                                         "response.completed"]  # fmt: skip
    assert warm[-1]["response"]["output"] == []
    events = await socket.create(input="and?", previous_response_id=warm[-1]["response"]["id"])
    assert events[-1]["type"] == "response.completed"


# --- compaction


async def test_compaction_of_input_items(base: str) -> None:
    body = {"model": "echo-1", "input": CASES["multi-turn"]["input"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/responses/compact", json=body) as r:
            assert r.status == 200, await r.text()
            compacted = await r.json()
        check_compaction(compacted)
        assert compacted["output"][-1]["type"] == "compaction"
        # Usable as the next create's input.
        follow = {"model": "echo-1", "input": [*compacted["output"], user("And now?")]}
        async with http.post(f"{base}/v1/responses", json=follow) as r:
            assert r.status == 200, await r.text()
            check_response(await r.json())


async def test_compaction_without_a_model_is_a_400(base: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/v1/responses/compact", json={"input": "x"}) as r,
    ):
        assert r.status == 400
        assert (await r.json())["error"]["param"] == "model"


async def test_compaction_of_a_previous_response(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/responses", json={"model": "echo-1", "input": "hi"}) as r:
            first = await r.json()
        body = {"model": "echo-1", "previous_response_id": first["id"]}
        async with http.post(f"{base}/v1/responses/compact", json=body) as r:
            assert r.status == 200, await r.text()
            compacted = await r.json()
    check_compaction(compacted)
    assert compacted["output"][0]["content"][0]["text"] == "hi"
