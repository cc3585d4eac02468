"""Anthropic Messages through the official anthropic SDK against a running gateway, with
the kernel's test providers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from g4f_server import errors
from g4f_server.provider import ModelInfo
from tests.fake_providers import Scripted

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"echo": {"type": "string"}}},
}


@pytest.fixture
async def sdk(start_gateway: Any, tmp_path: Any) -> AsyncIterator[Any]:
    made: list[Any] = []

    async def make(*plugins: object, sdk_key: str = "unused", **config: Any) -> Any:
        base = await start_gateway(plugins=list(plugins), data_dir=str(tmp_path), **config)
        made.append(anthropic.AsyncAnthropic(base_url=base, api_key=sdk_key, max_retries=0))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def raw_events(client: Any, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    url = str(client.base_url).rstrip("/") + "/v1/messages"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        assert resp.status == 200
        text = await resp.text()
    out = []
    for block in filter(None, text.split("\n\n")):
        name, data = block.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == "event: " + event["type"]
        out.append((event["type"], event))
    return out


async def test_create_message(sdk: Any) -> None:
    echo = Scripted(usage=True)
    client = await sdk(echo)
    message = await client.messages.create(
        model="echo-1",
        max_tokens=100,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "hi claude"}],
        metadata={"user_id": "u-1"},
        stop_sequences=["END"],
        extra_body={"top_k": 5},
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hi claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 3)
    assert echo.seen[-1].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi claude"},
    ]


async def test_stream_text_and_final_message(sdk: Any) -> None:
    client = await sdk(Scripted())
    async with client.messages.stream(
        model="echo-1", max_tokens=50, messages=[{"role": "user", "content": "one two"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "echo: one two"
    assert final.content[0].text == "echo: one two"
    assert final.stop_reason == "end_turn"

    body = {
        "model": "echo-1",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "a"}],
    }
    kinds = [kind for kind, _ in await raw_events(client, body)]
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_thinking_blocks(sdk: Any) -> None:
    client = await sdk(Scripted())
    request: dict[str, Any] = {
        "model": "thinker",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "why"}],
    }
    message = await client.messages.create(**request)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think. "
    async with client.messages.stream(**request) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think. "


async def test_tool_use_round_trip(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    messages: list[Any] = [{"role": "user", "content": "Paris"}]
    first = await client.messages.create(
        model="echo-1", max_tokens=100, messages=messages, tools=[WEATHER]
    )
    assert first.stop_reason == "tool_use"
    use = first.content[0]
    assert use.type == "tool_use"
    assert use.name == "get_weather"
    assert use.input == {"echo": "Paris"}
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        },
    ]
    second = await client.messages.create(
        model="echo-1", max_tokens=100, messages=messages, tools=[WEATHER]
    )
    assert second.content[0].text == "echo: tool said sunny"
    assert echo.seen[-1].messages[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"echo": "Paris"}',
    }
    assert echo.seen[-1].messages[2] == {
        "role": "tool",
        "tool_call_id": use.id,
        "content": "sunny",
    }


async def test_streamed_tool_input(sdk: Any) -> None:
    client = await sdk(Scripted())
    async with client.messages.stream(
        model="echo-1",
        max_tokens=100,
        messages=[{"role": "user", "content": "Rome"}],
        tools=[WEATHER],
        tool_choice={"type": "any"},
    ) as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_message()
    assert "input_json" in kinds
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"echo": "Rome"}


async def test_image_blocks_reach_the_provider(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.invalid/a.png"}},
        {"type": "text", "text": "what is it"},
    ]
    await client.messages.create(
        model="echo-1", max_tokens=10, messages=[{"role": "user", "content": content}]
    )
    assert echo.seen[-1].messages[0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}},
        {"type": "text", "text": "what is it"},
    ]


async def test_errors_in_anthropic_shape(sdk: Any) -> None:
    client = await sdk(Scripted())
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.messages.create(
            model="missing", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Model 'missing' not found"},
    }
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
            tool_choice={"type": "tool", "name": "web_search"},
        )  # fmt: skip
    assert "'web_search'" in bad.value.message
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    url = str(client.base_url).rstrip("/") + "/v1/messages"
    async with aiohttp.ClientSession() as http, http.post(url, json={"model": "echo-1"}) as r:
        assert r.status == 400  # max_tokens and messages are required
        assert (await r.json())["error"]["type"] == "invalid_request_error"

    keyed = await sdk(Scripted(), sdk_key="wrong", api_key="right")
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await keyed.messages.create(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert auth.value.body["error"]["type"] == "authentication_error"
    right = await sdk(Scripted(), sdk_key="right", api_key="right")
    ok = await right.messages.create(
        model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert ok.content[0].text == "echo: x"


async def test_failure_before_the_first_byte(sdk: Any) -> None:
    client = await sdk(Scripted(fail=errors.ProviderRateLimitError("busy", retry_after=3)))
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    client = await sdk(Scripted(fail=errors.ProviderError("upstream down")))
    with pytest.raises(anthropic.InternalServerError) as down:
        async with client.messages.stream(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            await stream.get_final_message()
    assert down.value.status_code == 502
    assert down.value.body["error"]["type"] == "api_error"


async def test_failure_after_the_first_byte_is_an_error_event(sdk: Any) -> None:
    client = await sdk(Scripted(fail_after=1))
    body = {
        "model": "echo-1",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "a b c"}],
    }
    events = await raw_events(client, body)
    assert events[0][0] == "message_start"
    error = {"type": "api_error", "message": "upstream dropped the connection"}
    assert events[-1] == ("error", {"type": "error", "error": error})
    assert "message_stop" not in [kind for kind, _ in events]
    with pytest.raises(anthropic.APIStatusError):
        async with client.messages.stream(
            model="echo-1", max_tokens=10, messages=[{"role": "user", "content": "a b c"}]
        ) as stream:
            async for _ in stream.text_stream:
                pass


async def test_count_tokens(sdk: Any) -> None:
    client = await sdk(Scripted())
    count = await client.messages.count_tokens(
        model="echo-1", messages=[{"role": "user", "content": "hello there, how are you?"}]
    )
    assert count.input_tokens > 0
    more = await client.messages.count_tokens(
        model="echo-1",
        messages=[{"role": "user", "content": "hello there, how are you?"}],
        tools=[WEATHER],
    )
    assert more.input_tokens > count.input_tokens


async def test_per_provider_route_and_headers(start_gateway: Any, tmp_path: Any) -> None:
    base = await start_gateway(
        plugins=[Scripted(), Scripted(name="Other")], data_dir=str(tmp_path), api_key="k"
    )
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", "anthropic-beta": "x"}
    body = {"model": "", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/api/Other/messages", json=body, headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["provider"] == "Other"
            assert r.headers["X-G4F-Provider"] == "Other"
        async with http.post(base + "/api/Nope/messages", json=body, headers=headers) as r:
            assert r.status == 404
            assert (await r.json())["error"]["type"] == "not_found_error"


# --- what Claude Code sends (issue 25 item 6) -------------------------------------------

CLAUDE_CODE_BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,"
    "advanced-tool-use-2025-11-20,effort-2025-11-24"
)
CACHED = {"type": "ephemeral"}


async def post_messages(
    client: Any, body: dict[str, Any], status: int = 200, **headers: str
) -> tuple[dict[str, Any], Any]:
    url = str(client.base_url).rstrip("/") + "/v1/messages"
    headers = {"anthropic-version": "2023-06-01", **headers}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        assert r.status == status, await r.text()
        if r.content_type != "application/json":  # a stream
            return {"events": await r.text()}, r.headers
        return await r.json(), r.headers


async def test_a_claude_code_request_is_answered(sdk: Any) -> None:
    """The shape of Claude Code 2.1.332's first request (recorded through the gateway):
    system blocks with cache_control, a system entry inside messages, adaptive thinking,
    effort, context management, deferred tools, its betas. Every field is honoured or
    ignored; none is refused."""
    echo = Scripted()
    client = await sdk(echo)
    long_name = "mcp__" + "x" * 123  # Anthropic's documented maximum: 128 characters
    body = {
        "model": "echo-1",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be concise.", "cache_control": CACHED},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<reminder/>"}]},
            {
                "role": "system",
                "content": [{"type": "text", "text": "# Environment", "cache_control": CACHED}],
            },
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": CACHED}]},
        ],
        "tools": [
            {
                "name": "Read",
                "description": "Reads a file",
                "input_schema": {"type": "object"},
                "cache_control": CACHED,
                "strict": True,
            },
            {
                "name": long_name,
                "input_schema": {"type": "object"},
                "defer_loading": True,
                "input_examples": [{}],
                "allowed_callers": ["direct"],
                "eager_input_streaming": True,
            },
        ],
        "metadata": {"user_id": '{"device_id":"abc","session_id":"s-1"}'},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "xhigh"},
        "cache_control": CACHED,
        "container": "container_1",
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.invalid", "name": "m"}],
        "service_tier": "auto",
        "inference_geo": "us",
        "speed": "fast",
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    url = str(client.base_url).rstrip("/") + "/v1/messages?beta=true"
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": CLAUDE_CODE_BETAS}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        assert "message_stop" in await r.text()
        assert "X-G4F-Dropped-Tools" not in r.headers
    seen = echo.seen[-1]
    assert seen.messages == [
        {"role": "system", "content": "You are Claude Code.\n\nBe concise."},
        {"role": "user", "content": "<reminder/>"},
        {"role": "system", "content": "# Environment"},
        {"role": "user", "content": "hi"},
    ]
    chat = seen.request
    assert chat is not None
    assert [t.function.name for t in chat.tools or [] if t.function] == ["Read", long_name]
    assert chat.tools[0].function.strict is True  # type: ignore[index,union-attr]
    assert chat.model_extra["reasoning_effort"] == "high"  # type: ignore[index]
    assert chat.user == '{"device_id":"abc","session_id":"s-1"}'
    assert chat.parallel_tool_calls is False
    # count_tokens takes the same request.
    del body["max_tokens"], body["stream"]
    url = str(client.base_url).rstrip("/") + "/v1/messages/count_tokens?beta=true"
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        assert r.status == 200 and (await r.json())["input_tokens"] > 0


async def test_system_entries_stay_where_they_are(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    await post_messages(client, {
        "model": "echo-1", "max_tokens": 10, "system": "top",
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "system", "content": "from now on, be brief"},
            {"role": "user", "content": "three"},
        ],
    })  # fmt: skip
    assert [(m["role"], m["content"]) for m in echo.seen[-1].messages] == [
        ("system", "top"),
        ("user", "one"),
        ("assistant", "two"),
        ("system", "from now on, be brief"),
        ("user", "three"),
    ]
    body = {"model": "echo-1", "max_tokens": 10, "messages": [
        {"role": "user", "content": "x"},
        {"role": "system", "content": [{"type": "image", "source": {}}]},
    ]}  # fmt: skip
    error, _ = await post_messages(client, body, 400)
    assert error["error"]["type"] == "invalid_request_error"
    assert "messages.1.content block 0 must be a text block" in error["error"]["message"]


@pytest.mark.parametrize(
    ("settings", "effort"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10000}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 20000}}, "high"),
        ({"thinking": {"type": "adaptive"}}, None),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "max"}}, "high"),
        ({"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}}, None),
    ],
)
async def test_thinking_and_effort_become_the_reasoning_effort(
    sdk: Any, settings: dict[str, Any], effort: str | None
) -> None:
    echo = Scripted()
    client = await sdk(echo)
    body = {"model": "echo-1", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    await post_messages(client, body | settings)
    assert echo.seen[-1].request.model_extra.get("reasoning_effort") == effort  # type: ignore[union-attr]


async def test_bad_effort_and_output_format_are_clear_400s(sdk: Any) -> None:
    client = await sdk(Scripted())
    body = {"model": "echo-1", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    error, headers = await post_messages(client, body | {"output_config": {"effort": "huge"}}, 400)
    assert "output_config.effort must be one of low, medium, high, xhigh, max" in str(error)
    assert headers["x-should-retry"] == "false"
    error, _ = await post_messages(client, body | {"output_format": {"type": "xml"}}, 400)
    assert error["error"]["message"].startswith("output_format must be")


async def test_output_format_asks_for_json(sdk: Any) -> None:
    echo = Scripted(models=[ModelInfo("json-1", frozenset({"chat", "json_schema"}))], name="Json")
    client = await sdk(echo)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {"model": "json-1", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    wanted = {"type": "json_schema", "schema": schema}
    for fmt in ({"output_format": wanted}, {"output_config": {"format": wanted}}):
        await post_messages(client, body | fmt)
        response_format = echo.seen[-1].request.response_format  # type: ignore[union-attr]
        assert response_format is not None and response_format.type == "json_schema"
        assert response_format.json_schema == {"name": "output", "schema": schema}


async def test_tools_the_gateway_cannot_run_are_dropped_and_named(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    tools = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "bash_20250124", "name": "bash"},
        WEATHER,
        {"type": "code_execution_20250825", "name": "code\r\nX-Evil: 1"},
    ]
    body = {"model": "echo-1", "max_tokens": 10, "tools": tools,
            "messages": [{"role": "user", "content": "Oslo"}]}  # fmt: skip
    message, headers = await post_messages(client, body)
    assert headers["X-G4F-Dropped-Tools"] == "web_search,bash,code__X-Evil:_1"
    assert "X-Evil" not in headers
    assert message["content"][0]["name"] == "get_weather"
    assert [t.function.name for t in echo.seen[-1].request.tools] == ["get_weather"]  # type: ignore[union-attr]
    # Streamed answers carry the header too.
    _, headers = await post_messages(client, body | {"stream": True})
    assert headers["X-G4F-Dropped-Tools"] == "web_search,bash,code__X-Evil:_1"
    # Forcing a dropped tool, or any tool when only dropped ones were given: a clear 400.
    only = body | {"tools": tools[:1], "tool_choice": {"type": "any"}}
    error, _ = await post_messages(client, only, 400)
    assert "web_search" in error["error"]["message"]
    forced = body | {"tool_choice": {"type": "tool", "name": "bash"}}
    error, _ = await post_messages(client, forced, 400)
    assert "'bash'" in error["error"]["message"]


async def test_blocks_from_tool_search_documents_and_server_tools(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    messages = [
        {"role": "user", "content": [
            {"type": "text", "text": "read this"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
             "data": "The doc."}, "title": "d", "citations": {"enabled": True}},
        ]},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []},
            {"type": "text", "text": "Searching tools."},
            {"type": "tool_use", "id": "tu_1", "name": "ToolSearch", "input": {"query": "w"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "tu_1", "cache_control": CACHED,
             "content": [{"type": "tool_reference", "tool_name": "get_weather"}]},
        ]},
    ]  # fmt: skip
    body = {"model": "echo-1", "max_tokens": 10, "messages": messages}
    message, _ = await post_messages(client, body)
    assert message["content"][0]["text"] == "echo: tool said Tool get_weather is available."
    sent = echo.seen[-1].messages
    assert sent[0] == {"role": "user", "content": "read this\nThe doc."}
    assert sent[1]["content"] == "Searching tools."
    assert [c["function"]["name"] for c in sent[1]["tool_calls"]] == ["ToolSearch"]
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBERi0="}}  # fmt: skip
    body["messages"] = [{"role": "user", "content": [pdf]}]
    error, _ = await post_messages(client, body, 400)
    assert "Only plain-text documents are supported" in error["error"]["message"]


async def test_models_in_anthropic_shape(sdk: Any) -> None:
    client = await sdk(Scripted())
    page = await client.models.list()
    ids = [m.id for m in page.data]
    assert ids[:3] == ["echo-1", "thinker", "plain"]
    first = page.data[0]
    assert (first.type, first.display_name) == ("model", "echo-1")
    assert first.created_at.year == 1970
    assert (page.first_id, page.last_id, page.has_more) == (ids[0], ids[-1], False)
    assert ids[-1] == "Echo" and page.data[-1].display_name == "Echo Labs"  # the provider
    one = await client.models.list(limit=1, after_id="echo-1")
    assert [m.id for m in one.data] == ["thinker"] and one.has_more
    before = await client.models.list(before_id="plain")
    assert [m.id for m in before.data] == ["echo-1", "thinker"] and not before.has_more
    model = await client.models.retrieve("gpt-4o-mini")  # an alias: echoed as asked
    assert (model.type, model.id) == ("model", "gpt-4o-mini")
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.models.retrieve("nope")
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.models.list(limit=0)
    message = "limit must be an integer from 1 to 1000"
    assert bad.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
    }
    # Without anthropic-version: OpenAI's list, as before.
    base = str(client.base_url).rstrip("/")
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/v1/models") as r:
            assert (await r.json())["object"] == "list"
        async with http.get(base + "/v1/models/echo-1") as r:
            assert (await r.json())["object"] == "model"


async def test_a_failed_tool_result_reaches_the_provider_marked_as_an_error(sdk: Any) -> None:
    echo = Scripted()
    client = await sdk(echo)
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "tu_1", "is_error": True,
             "content": "no such city"},
            {"type": "text", "text": "try again"},
        ]},
    ]  # fmt: skip
    body = {"model": "echo-1", "max_tokens": 10, "messages": messages}
    await post_messages(client, body)
    sent = echo.seen[-1].messages
    assert sent[2] == {"role": "tool", "tool_call_id": "tu_1", "content": "Error: no such city"}
    assert sent[3] == {"role": "user", "content": "try again"}
