"""The coding agents of issue 25 with their model served by the openai_compat plugin (issue
26): Codex CLI, Claude Code, the openai-agents SDK and Responses over a WebSocket, each
through a gateway whose only provider is the Groq preset pointed at the plugin's emulator
(with Groq's documented refusals on), behind ``tests/agent_upstream.py`` so that the model
calls a tool the agent really has and then answers from its result.

The operator's config aliases the upstream's ``llama-3.3-70b-versatile`` as ``openai``,
the model the agents' own tests ask for. Codex and Claude Code are installed and skipped
as in test_codex.py and test_claude_code.py (npm into a cache folder; every connection
they make outside 127.0.0.1 goes to a closed local port)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

import g4f_server_openai_compat
from g4f_server.app import create_app
from g4f_server.config import AppConfig
from tests import agent_upstream
from tests.e2e.test_claude_code import claude, run_claude, text_deltas  # noqa: F401 (claude: a fixture)
from tests.e2e.test_codex import codex_binary, codex_config, run_codex
from tests.server_process import free_port

KEY = "sk-gateway-test"
UPSTREAM_MODEL = "llama-3.3-70b-versatile"
SECRET = "the secret word is pelican"


@dataclass
class Gateway:
    base: str  # what run_claude reads
    front: agent_upstream.AgentUpstream
    emulator: Any
    answered: list[tuple[str, str, int]]  # every request the gateway answered, with status

    def refused(self) -> list[tuple[str, str, int]]:
        return [a for a in self.answered if a[2] >= 400]


@pytest.fixture
async def gateway(aiohttp_server: Any, tmp_path: Path) -> AsyncIterator[Gateway]:
    module = agent_upstream.emulator_module()
    front, emulator = await agent_upstream.start(
        aiohttp_server,
        refused=frozenset({"logprobs", "logit_bias", "top_logprobs"}),  # Groq's, as its conftest
        refused_message_fields=frozenset({"name"}),
    )
    upstream = {"base_url": front.base, "api_key": module.KEY, "models": {"openai": UPSTREAM_MODEL}}
    app = create_app(
        AppConfig(data_dir=str(tmp_path / "data"), api_key=KEY, upstreams={"groq": upstream}),
        plugins=[g4f_server_openai_compat],
        load_entrypoints=False,
    )
    answered: list[tuple[str, str, int]] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        answered.append((request.method, request.path, response.status))

    app.on_response_prepare.append(record)
    server = await aiohttp_server(app, host="127.0.0.1")
    yield Gateway(str(server.make_url("")).rstrip("/"), front, emulator, answered)


def notes(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "notes.txt"
    path.write_text(SECRET + "\n")
    return path


def tool_results(gateway: Gateway) -> list[str]:
    return [
        json.dumps(m.get("content"))
        for body in gateway.front.requests
        for m in body["messages"]
        if m["role"] == "tool"
    ]


def assert_upstream_saw_the_round_trip(gateway: Gateway) -> None:
    """Every upstream request named the upstream's model, none held a field Groq refuses
    (the emulator would have answered 400), and the tool's result went back."""
    chats = gateway.emulator.calls("chat")
    assert chats and {c.json["model"] for c in chats} == {UPSTREAM_MODEL}
    assert gateway.front.scripted, "the model never called a tool"
    assert any("pelican" in result for result in tool_results(gateway))


async def test_codex_runs_a_command_and_answers_from_its_output(
    gateway: Gateway, tmp_path: Path
) -> None:
    binary = codex_binary()
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(codex_config(gateway.base))
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        "PATH": f"{Path(shutil.which('node') or '/usr/bin/node').parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "G4F_API_KEY": KEY,
        "HTTPS_PROXY": closed,
        "HTTP_PROXY": closed,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    work = notes(tmp_path / "project").parent
    prompt = 'Read my notes [[call exec_command {"cmd": "cat notes.txt"}]]'
    events = await run_codex(binary, env, work, prompt)
    items = [e["item"] for e in events if e.get("type") == "item.completed"]
    command = next(i for i in items if i["type"] == "command_execution")
    assert "cat notes.txt" in command["command"]
    assert SECRET in command["aggregated_output"]
    answer = [i for i in items if i["type"] == "agent_message"][-1]["text"]
    assert answer.startswith("The tool said:") and SECRET in answer
    assert events[-1]["type"] == "turn.completed"
    assert_upstream_saw_the_round_trip(gateway)
    # Codex streams, so the plugin streamed upstream too; its tools reached the upstream.
    assert all(body["stream"] is True for body in gateway.front.requests)
    names = [t["function"]["name"] for t in gateway.front.requests[0]["tools"]]
    assert "exec_command" in names
    assert ("POST", "/v1/responses", 200) in gateway.answered
    assert gateway.refused() == []


async def test_claude_code_reads_a_file_and_answers_from_it(
    claude: Path,  # noqa: F811 (the fixture imported above)
    gateway: Gateway,
    tmp_path: Path,
) -> None:
    path = notes(tmp_path / "project")
    work = path.parent
    code, output, _ = await run_claude(claude, gateway, work, "What is 2 + 2?")  # type: ignore[arg-type]
    assert code == 0, output
    assert "Echo:" in output and "What is 2 + 2?" in output

    prompt = f'Read my notes [[call Read {{"file_path": "{path}"}}]]'
    code, output, _ = await run_claude(claude, gateway, work, prompt)  # type: ignore[arg-type]
    assert code == 0, output
    assert "The tool said:" in output and "pelican" in output
    assert_upstream_saw_the_round_trip(gateway)

    code, output, _ = await run_claude(
        claude, gateway, work, "Stream me",  # type: ignore[arg-type]
        "--output-format", "stream-json", "--verbose", "--include-partial-messages",
    )  # fmt: skip
    assert code == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    deltas = text_deltas(lines)
    assert len(deltas) > 2 and "Stream me" in "".join(deltas)
    assert all(body.get("stream") for body in gateway.front.requests)
    assert gateway.refused() == []
    assert {path for _, path, _ in gateway.answered} == {"/v1/messages"}


def city_time(city: str) -> str:
    return f"It is noon in {city}, {SECRET}."


@pytest.mark.parametrize("wire", ["responses", "chat_completions"])
@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
async def test_openai_agents_sdk_calls_a_function_tool(
    gateway: Gateway, wire: str, streamed: bool
) -> None:
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=gateway.base + "/v1", api_key=KEY, max_retries=0)
    calls: list[str] = []

    @agents.function_tool
    def get_city_time(city: str) -> str:
        """The local time in a city."""
        calls.append(city)
        return city_time(city)

    kind = agents.OpenAIResponsesModel if wire == "responses" else agents.OpenAIChatCompletionsModel
    agent = agents.Agent(
        name="Clock",
        instructions="Answer with the time.",
        model=kind(model="openai", openai_client=client),
        tools=[get_city_time],
    )
    prompt = 'Time in Oslo? [[call get_city_time {"city": "Oslo"}]]'
    if streamed:
        result = agents.Runner.run_streamed(agent, prompt)
        kinds = {event.type async for event in result.stream_events()}
        assert "raw_response_event" in kinds
    else:
        result = await agents.Runner.run(agent, prompt)
    assert calls == ["Oslo"]
    assert result.final_output == f"The tool said: {city_time('Oslo')}"
    assert_upstream_saw_the_round_trip(gateway)
    assert all(body["stream"] is streamed for body in gateway.front.requests)
    await client.close()


async def test_responses_over_a_websocket_with_a_tool_round_trip(gateway: Gateway) -> None:
    tool = {
        "type": "function",
        "name": "get_city_time",
        "description": "The local time in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    url = gateway.base.replace("http", "ws", 1) + "/v1/responses"
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        prompt = 'Time in Oslo? [[call get_city_time {"city": "Oslo"}]]'
        first = await _create(ws, tools=[tool], input=prompt)
        done = first[-1]["response"]
        assert first[-1]["type"] == "response.completed", first[-1]
        call = next(i for i in done["output"] if i["type"] == "function_call")
        assert call["name"] == "get_city_time" and json.loads(call["arguments"]) == {"city": "Oslo"}
        output = {"type": "function_call_output", "call_id": call["call_id"]}
        second = await _create(
            ws, tools=[tool], previous_response_id=done["id"],
            input=[{**output, "output": city_time("Oslo")}],
        )  # fmt: skip
    assert second[-1]["type"] == "response.completed", second[-1]
    assert second[-1]["response"]["output_text"] == f"The tool said: {city_time('Oslo')}"
    assert_upstream_saw_the_round_trip(gateway)
    # The continuation reached the upstream as the whole conversation: prompt, call, result.
    roles = [m["role"] for m in gateway.front.requests[-1]["messages"]]
    assert roles[-3:] == ["user", "assistant", "tool"]


async def _create(ws: aiohttp.ClientWebSocketResponse, **body: Any) -> list[dict[str, Any]]:
    await ws.send_json({"type": "response.create", "model": "openai", **body})
    events: list[dict[str, Any]] = []
    while True:
        message = await ws.receive(timeout=30)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        events.append(json.loads(message.data))
        if events[-1]["type"] in ("response.completed", "response.failed", "error",
                                  "response.incomplete"):  # fmt: skip
            return events
