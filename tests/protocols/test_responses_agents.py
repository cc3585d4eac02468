"""What coding agents send to /v1/responses (issue 25): namespace, custom and hosted tools,
the complete response object, input_file parts and compaction; through a running gateway
with a test provider that records what it was given."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from g4f_server import events, hookimpl
from g4f_server.provider import ModelInfo, ProviderInfo
from tests.protocols.open_responses_schema import check_response

NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Agents",
    "tools": [
        {
            "type": "function",
            "name": "spawn_agent",
            "description": "Start an agent",
            "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
        },
        {"type": "function", "name": "wait_agent", "parameters": {"type": "object"}},
    ],
}
PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
READ = {"type": "function", "name": "read_file", "parameters": {"type": "object"}}
HOSTED = [
    {"type": "web_search"},
    {"type": "image_generation"},
    {"type": "mcp", "server_label": "x"},
]


class ToolCaller:
    """Calls the tool whose (flat) name the last user message starts with, the text after
    it as the argument (``input`` for a one-string tool, else ``q``); after a tool's
    output, answers with it. Records every request."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name="Caller", default_model="caller-1")

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("caller-1", frozenset({"chat", "tools", "vision"}))]

    @hookimpl
    async def chat(self, request: Any) -> AsyncIterator[events.ChatEvent]:
        self.requests.append(request)
        last = request.messages[-1]
        text = last.text()
        if last.role == "tool":
            yield events.TextDelta(f"done: {text}")
            return
        names = [t.function.name for t in request.tools or []]
        called = next((n for n in names if text.startswith(n + " ")), None)
        if called is None:
            yield events.TextDelta(f"said: {text}")
            return
        tool = next(t.function for t in request.tools if t.function.name == called)
        key = "input" if "input" in (tool.parameters or {}).get("properties", {}) else "q"
        args = json.dumps({key: text[len(called) + 1 :]})
        yield events.ToolCallDelta(0, id="call_7", name=called, arguments=args[:6])
        yield events.ToolCallDelta(0, arguments=args[6:])
        yield events.Finish("tool_calls")


@pytest.fixture
async def gateway(start_gateway: Any, tmp_path: Any) -> AsyncIterator[tuple[str, ToolCaller]]:
    caller = ToolCaller()
    yield await start_gateway(plugins=[caller], data_dir=str(tmp_path)), caller


async def post(base: str, body: dict[str, Any], path: str = "/v1/responses") -> Any:
    async with aiohttp.ClientSession() as http, http.post(base + path, json=body) as resp:
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, resp.headers, data


async def stream_events(base: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/v1/responses", json={**body, "stream": True}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        text = await resp.text()
    return [json.loads(b.split("\ndata: ", 1)[1]) for b in text.split("\n\n") if b]


# --- tools


async def test_namespace_tools_are_flattened_and_calls_name_their_namespace(
    gateway: tuple[str, ToolCaller],
) -> None:
    base, caller = gateway
    body = {"model": "caller-1", "input": "spawn_agent fix the bug", "tools": [NAMESPACE, READ]}
    status, _, reply = await post(base, body)
    assert status == 200, reply
    seen = caller.requests[-1]
    assert [t.function.name for t in seen.tools] == ["spawn_agent", "wait_agent", "read_file"]
    assert seen.tools[0].function.description == "Start an agent"
    call = reply["output"][0]
    assert call["type"] == "function_call"
    assert (call["name"], call["namespace"]) == ("spawn_agent", "multi_agent_v1")
    assert json.loads(call["arguments"]) == {"q": "fix the bug"}
    check_response(reply)
    # The call and its output sent back: the provider sees its flat name again.
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}
    status, _, again = await post(base, {**body, "input": [call, output]})
    assert status == 200, again
    assert again["output_text"] == "done: ok"
    assert caller.requests[-1].messages[0].tool_calls[0].function.name == "spawn_agent"
    # Streamed: the same item, with its namespace, in the events.
    streamed = await stream_events(base, body)
    done = [e["item"] for e in streamed if e["type"] == "response.output_item.done"]
    assert done[0]["namespace"] == "multi_agent_v1" and done[0]["name"] == "spawn_agent"
    check_response(streamed[-1]["response"])


async def test_colliding_names_are_qualified_for_the_provider(
    gateway: tuple[str, ToolCaller],
) -> None:
    base, caller = gateway
    other = {**NAMESPACE, "name": "jobs", "tools": [NAMESPACE["tools"][0]]}
    body = {"model": "caller-1", "input": "jobs__spawn_agent now", "tools": [NAMESPACE, other]}
    status, _, reply = await post(base, body)
    assert status == 200, reply
    names = [t.function.name for t in caller.requests[-1].tools]
    assert names == ["multi_agent_v1__spawn_agent", "wait_agent", "jobs__spawn_agent"]
    call = reply["output"][0]
    assert (call["namespace"], call["name"]) == ("jobs", "spawn_agent")


async def test_custom_tools_are_one_string_functions_and_come_back_as_custom_calls(
    gateway: tuple[str, ToolCaller],
) -> None:
    base, caller = gateway
    patch_text = "*** Begin Patch\n*** End Patch"
    body = {"model": "caller-1", "input": f"apply_patch {patch_text}", "tools": [PATCH]}
    status, _, reply = await post(base, body)
    assert status == 200, reply
    function = caller.requests[-1].tools[0].function
    assert function.parameters["required"] == ["input"]
    assert "start: /.+/" in function.description  # the grammar, told to the model
    call = reply["output"][0]
    assert call["type"] == "custom_tool_call"
    assert call["input"] == patch_text and call["name"] == "apply_patch"
    assert call["id"].startswith("ctc_")
    # Its output sent back as a custom_tool_call_output.
    output = {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "applied"}
    status, _, again = await post(base, {**body, "input": [call, output]})
    assert again["output_text"] == "done: applied"
    history = caller.requests[-1].messages[0].tool_calls[0].function
    assert json.loads(history.arguments) == {"input": patch_text}
    # Streamed: input delta and done events, no function-call events.
    streamed = await stream_events(base, body)
    kinds = [e["type"] for e in streamed]
    assert "response.custom_tool_call_input.done" in kinds
    assert not any(k.startswith("response.function_call_arguments") for k in kinds)
    done = next(e for e in streamed if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == patch_text
    final = streamed[-1]["response"]["output"][0]
    assert final["type"] == "custom_tool_call" and final["input"] == patch_text
    assert "arguments" not in final


async def test_hosted_tools_are_dropped_and_named(gateway: tuple[str, ToolCaller]) -> None:
    base, caller = gateway
    body = {"model": "caller-1", "input": "read_file a.txt", "tools": [*HOSTED, READ]}
    status, headers, reply = await post(base, body)
    assert status == 200, reply
    assert headers["X-G4F-Dropped-Tools"] == "web_search,image_generation,mcp"
    assert [t.function.name for t in caller.requests[-1].tools] == ["read_file"]
    assert [t["type"] for t in reply["tools"]] == [
        "web_search",
        "image_generation",
        "mcp",
        "function",
    ]
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/v1/responses", json={**body, "stream": True}) as resp,
    ):
        assert resp.headers["X-G4F-Dropped-Tools"] == "web_search,image_generation,mcp"
    # Only hosted tools: the provider gets none, and no header when nothing was dropped.
    status, headers, reply = await post(base, {**body, "tools": HOSTED[:1]})
    assert status == 200 and reply["output_text"] == "said: read_file a.txt"
    assert caller.requests[-1].tools is None
    status, headers, _ = await post(base, {**body, "tools": [READ]})
    assert "X-G4F-Dropped-Tools" not in headers


@pytest.mark.parametrize("forced", ["web_search", "file_search", "code_interpreter", "mcp"])
async def test_forcing_a_hosted_tool_is_a_400_naming_it(
    gateway: tuple[str, ToolCaller], forced: str
) -> None:
    base, caller = gateway
    body = {
        "model": "caller-1",
        "input": "x",
        "tools": [{"type": forced}],
        "tool_choice": {"type": forced},
    }
    status, _, reply = await post(base, body)
    assert status == 400
    assert reply["error"]["code"] == "unsupported_tool"
    assert reply["error"]["param"] == "tool_choice"
    assert forced in reply["error"]["message"]
    assert caller.requests == []


async def test_tool_choice_names_custom_and_namespaced_tools(
    gateway: tuple[str, ToolCaller],
) -> None:
    base, caller = gateway
    body = {
        "model": "caller-1",
        "input": "x",
        "tools": [PATCH, NAMESPACE],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
    }
    assert (await post(base, body))[0] == 200
    assert caller.requests[-1].tool_choice == {
        "type": "function",
        "function": {"name": "apply_patch"},
    }
    allowed = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "wait_agent"}],
    }
    assert (await post(base, {**body, "tool_choice": allowed}))[0] == 200
    assert [t.function.name for t in caller.requests[-1].tools] == ["wait_agent"]
    assert caller.requests[-1].tool_choice == "required"


# --- the response object


async def test_every_field_is_echoed_with_defaults(gateway: tuple[str, ToolCaller]) -> None:
    base, _ = gateway
    status, _, plain = await post(base, {"model": "caller-1", "input": "hi"})
    assert status == 200
    check_response(plain)
    assert plain["completed_at"] >= plain["created_at"]
    assert (plain["temperature"], plain["top_p"]) == (1.0, 1.0)
    assert (plain["presence_penalty"], plain["frequency_penalty"], plain["top_logprobs"]) == (
        0,
        0,
        0,
    )
    assert plain["max_tool_calls"] is None and plain["background"] is False
    assert plain["service_tier"] == "default"
    assert plain["safety_identifier"] is None and plain["prompt_cache_key"] is None
    sent = {
        "model": "caller-1",
        "input": "hi",
        "temperature": 0.3,
        "top_p": 0.9,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "top_logprobs": 2,
        "max_tool_calls": 4,
        "service_tier": "flex",
        "safety_identifier": "user-1",
        "prompt_cache_key": "thread-9",
        "tools": [{**READ, "strict": True}, {**READ, "name": "list_files"}],
    }
    status, _, reply = await post(base, sent)
    check_response(reply)
    echoed = "temperature top_p presence_penalty frequency_penalty top_logprobs max_tool_calls"
    for key in [*echoed.split(), "service_tier", "safety_identifier", "prompt_cache_key"]:
        assert reply[key] == sent[key], key
    assert [t["strict"] for t in reply["tools"]] == [True, False]
    async with aiohttp.ClientSession() as http:
        stored = await (await http.get(f"{base}/v1/responses/{reply['id']}")).json()
    assert stored == reply
    streamed = await stream_events(base, sent)
    embedded = [e["response"] for e in streamed if "response" in e]
    assert [e["type"] for e in streamed if "response" in e] == [
        "response.created", "response.in_progress", "response.completed"
    ]  # fmt: skip
    for response in embedded:
        check_response(response)
        assert response["presence_penalty"] == 0.5 and response["max_tool_calls"] == 4
    assert embedded[0]["completed_at"] is None and embedded[-1]["completed_at"] is not None


async def test_background_is_a_clear_400(gateway: tuple[str, ToolCaller]) -> None:
    status, _, reply = await post(
        gateway[0], {"model": "caller-1", "input": "x", "background": True}
    )
    assert status == 400 and reply["error"]["param"] == "background"


# --- input_file


def data_uri(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


def file_part(name: str, raw: bytes, mime: str = "") -> dict[str, Any]:
    data = data_uri(mime, raw) if mime else base64.b64encode(raw).decode()
    return {"type": "input_file", "filename": name, "file_data": data}


def pdf_bytes(text: str) -> bytes:
    """A one-page PDF showing ``text`` (objects and xref written out by hand)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.mark.parametrize(
    ("name", "raw", "mime"),
    [
        ("notes.txt", b"plain words", "text/plain"),
        ("README.md", b"# Title\n\n- item", "text/markdown"),
        ("data.json", b'{"a": 1}', "application/json"),
        ("table.csv", b"a,b\n1,2", "text/csv"),
        ("main.py", b"def f():\n    return 1\n", ""),
        ("lib.rs", 'fn main() { println!("é"); }'.encode(), "application/octet-stream"),
    ],
)
async def test_text_like_files_reach_the_provider_as_text(
    gateway: tuple[str, ToolCaller], name: str, raw: bytes, mime: str
) -> None:
    base, caller = gateway
    content = [{"type": "input_text", "text": "read this"}, file_part(name, raw, mime)]
    status, _, reply = await post(
        base, {"model": "caller-1", "input": [{"role": "user", "content": content}]}
    )
    assert status == 200, reply
    assert (
        caller.requests[-1].messages[-1].content == f"read this\n\n[file: {name}]\n{raw.decode()}"
    )


async def test_a_pdf_is_its_text(gateway: tuple[str, ToolCaller]) -> None:
    base, caller = gateway
    part = file_part("paper.pdf", pdf_bytes("Hello from a PDF"), "application/pdf")
    status, _, reply = await post(
        base, {"model": "caller-1", "input": [{"role": "user", "content": [part]}]}
    )
    assert status == 200, reply
    assert caller.requests[-1].messages[-1].content == "[file: paper.pdf]\nHello from a PDF"


async def test_a_pdf_without_the_extra_is_a_400_naming_it(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if g4f-server[pdf] were not installed
    client = await make_client(ToolCaller())
    part = file_part("paper.pdf", pdf_bytes("x"), "application/pdf")
    resp = await client.post(
        "/v1/responses", json={"model": "caller-1", "input": [{"role": "user", "content": [part]}]}
    )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert "g4f-server[pdf]" in error["message"] and error["code"] == "pdf_extra_missing"


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ({"type": "input_file", "file_id": "file-1"}, "file_id"),
        ({"type": "input_file", "file_url": "https://example.invalid/a.pdf"}, "file_url"),
        (file_part("a.png", b"\x89PNG\r\n", "image/png"), "image/png"),
        (file_part("blob", b"\xff\xfe\x00", ""), "not UTF-8"),
        (
            {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,@@"},
            "base64",
        ),
    ],
)
async def test_files_that_cannot_be_read_are_a_clear_400(
    gateway: tuple[str, ToolCaller], part: dict[str, Any], says: str
) -> None:
    base, caller = gateway
    status, _, reply = await post(
        base, {"model": "caller-1", "input": [{"role": "user", "content": [part]}]}
    )
    assert status == 400
    assert says in reply["error"]["message"]
    assert reply["error"]["param"] == "input.0.content.0"
    assert caller.requests == []


# --- compaction


async def test_compaction_output_is_the_next_input(gateway: tuple[str, ToolCaller]) -> None:
    base, caller = gateway
    conversation = [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "hello Ada"},
        {"role": "user", "content": [{"type": "input_text", "text": "remember it"}]},
    ]
    status, _, compacted = await post(
        base, {"model": "caller-1", "input": conversation}, "/v1/responses/compact"
    )
    assert status == 200, compacted
    assert compacted["object"] == "response.compaction"
    assert compacted["id"].startswith("resp_") and isinstance(compacted["created_at"], int)
    assert compacted["usage"]["total_tokens"] > 0
    *users, item = compacted["output"]
    assert [u["content"][0]["text"] for u in users] == ["my name is Ada", "remember it"]
    assert item["type"] == "compaction" and item["encrypted_content"]
    # The summary was asked of the provider with the whole conversation.
    asked = caller.requests[-1].messages
    assert asked[1].content == "hello Ada" and "Summarise the conversation" in asked[-1].content
    # Codex's flow: the output, then the new message, as the next request's input.
    nxt = [*compacted["output"], {"role": "user", "content": "what is my name?"}]
    status, _, reply = await post(base, {"model": "caller-1", "input": nxt})
    assert status == 200, reply
    given = caller.requests[-1].messages
    assert given[2].role == "user" and given[2].content.startswith(
        "Summary of the earlier conversation"
    )
    assert "said: Summarise the conversation" in given[2].content  # the provider's summary
    # A stored response's conversation can be compacted too, by its id.
    status, _, compacted = await post(
        base, {"model": "caller-1", "previous_response_id": reply["id"]}, "/v1/responses/compact"
    )
    assert status == 200, compacted
    assert compacted["output"][-1]["type"] == "compaction"
    assert compacted["output"][-2]["content"][0]["text"] == "what is my name?"


async def test_compaction_errors(gateway: tuple[str, ToolCaller]) -> None:
    base, _ = gateway
    status, _, reply = await post(base, {"input": "x"}, "/v1/responses/compact")
    assert status == 400 and reply["error"]["param"] == "model"
    status, _, reply = await post(base, {"model": "caller-1"}, "/v1/responses/compact")
    assert status == 400 and reply["error"]["param"] == "input"
    status, _, reply = await post(
        base, {"model": "caller-1", "previous_response_id": "resp_nope"}, "/v1/responses/compact"
    )
    assert status == 404 and reply["error"]["code"] == "previous_response_not_found"
    foreign = {"type": "compaction", "encrypted_content": "gAAAAB-openai-sealed"}
    status, _, reply = await post(base, {"model": "caller-1", "input": [foreign]})
    assert status == 400 and reply["error"]["code"] == "invalid_compaction"


async def test_openai_sdk_compact(gateway: tuple[str, ToolCaller]) -> None:
    base, _ = gateway
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        compacted = await sdk.responses.compact(model="caller-1", input="a long story")
        assert compacted.output[-1].type == "compaction"
        reply = await sdk.responses.create(
            model="caller-1",
            input=[
                *[i.model_dump(warnings=False) for i in compacted.output],
                {"role": "user", "content": "go on"},
            ],
        )
        assert reply.output_text == "said: go on"
