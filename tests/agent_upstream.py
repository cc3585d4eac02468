"""An OpenAI-compatible upstream that coding agents can work with, for tests (127.0.0.1).

The openai_compat plugin's emulator (plugins/openai_compat/tests/emulator.py) answers a
request with tools by calling its own ``get_weather``, which no agent has. A real model
calls one of the tools the agent offered, then answers from the tool's result; this front
makes the emulator do that, using only its public API (``Emulator()``, ``.app``):

- a prompt holding ``[[call NAME {json}]]`` (NAME among the request's tools) is answered
  here with that tool call, streamed as chunks or as one completion, the way OpenAI sends
  them, until a tool result follows that prompt;
- every other chat request goes to the emulator with ``tool_choice: "none"`` when it has
  tools, so the emulator answers in text: "The tool said: <result>" after a tool result,
  "Echo: <last user text>" otherwise;
- ``GET /v1/models`` goes to the emulator as it is.

``requests`` holds every chat request body as the gateway sent it (before the front
touched it), ``scripted`` the tool calls answered here.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
# The name the plugin's conftest loads it under (pytest's importlib mode: every plugin's
# tests have an "emulator" module), so both share one module object.
_EMULATOR = "g4f_server_openai_compat_tests_emulator"
_CALL = re.compile(r"\[\[call ([A-Za-z0-9_.:-]+) (\{.*?\})\]\]", re.S)


def emulator_module() -> Any:
    if _EMULATOR not in sys.modules:
        path = ROOT / "plugins/openai_compat/tests/emulator.py"
        spec = importlib.util.spec_from_file_location(_EMULATOR, path)
        assert spec and spec.loader
        sys.modules[_EMULATOR] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[_EMULATOR])
    return sys.modules[_EMULATOR]


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def scripted_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool call the last scripted prompt asks for, while no tool result follows it."""
    names = {(t.get("function") or {}).get("name") for t in body.get("tools") or ()}
    messages = body.get("messages") or []
    for position in range(len(messages) - 1, -1, -1):
        message = messages[position]
        if message.get("role") == "tool":
            return None  # answered already: the model now speaks from the result
        if message.get("role") != "user" or not (found := _CALL.search(_text(message))):
            continue
        if found[1] not in names:
            return None
        arguments = orjson.dumps(orjson.loads(found[2])).decode()
        return {"id": f"call_front_{position}", "type": "function",
                "function": {"name": found[1], "arguments": arguments}}  # fmt: skip
    return None


class AgentUpstream:
    """The front. ``app`` serves it; ``emulator_base`` is the emulator's ``.../v1``. The
    client's Authorization goes on to the emulator, which checks it."""

    def __init__(self, emulator_base: str) -> None:
        self.emulator_base = emulator_base.rstrip("/")
        self.base = ""  # the front's own ``.../v1``, once it is served
        self.requests: list[dict[str, Any]] = []
        self.scripted: list[dict[str, Any]] = []
        self._http: aiohttp.ClientSession | None = None
        self.app = web.Application()
        self.app.router.add_get("/v1/models", self._models)
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.on_cleanup.append(self._close)

    async def _close(self, _app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()

    async def _forward(
        self, request: web.Request, method: str, path: str, data: bytes | None = None
    ) -> web.StreamResponse:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Authorization": request.headers.get("Authorization", "")}
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self._http.request(
            method, self.emulator_base + path, data=data, headers=headers
        ) as upstream:
            resp = web.StreamResponse(
                status=upstream.status,
                headers={"Content-Type": upstream.headers.get("Content-Type", "text/plain")},
            )
            await resp.prepare(request)
            async for piece in upstream.content.iter_any():
                await resp.write(piece)
            await resp.write_eof()
            return resp

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return await self._forward(request, "GET", "/models")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        self.requests.append(body)
        call = scripted_call(body)
        if call is None:
            if body.get("tools"):
                body = {**body, "tool_choice": "none"}
            return await self._forward(request, "POST", "/chat/completions", orjson.dumps(body))
        self.scripted.append(call)
        if body.get("stream"):
            return await self._stream_call(request, body, call)
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        return web.json_response(
            {"id": "chatcmpl-front", "object": "chat.completion", "created": 0,
             "model": body["model"], "choices": [choice], "usage": _USAGE},
            dumps=lambda o: orjson.dumps(o).decode(),
        )  # fmt: skip

    async def _stream_call(
        self, request: web.Request, body: dict[str, Any], call: dict[str, Any]
    ) -> web.StreamResponse:
        """The call as OpenAI streams one: id and name first, the arguments in two pieces."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": "chatcmpl-front", "object": "chat.completion.chunk", "created": 0,
                "model": body["model"]}  # fmt: skip

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            await resp.write(b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n")

        args = call["function"]["arguments"]
        half = len(args) // 2
        function = {"name": call["function"]["name"], "arguments": args[:half]}
        head = {"index": 0, "id": call["id"], "type": "function", "function": function}
        await send({"role": "assistant", "content": None, "tool_calls": [head]})
        await send({"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]})
        await send({}, "tool_calls")
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk = {**base, "choices": [], "usage": _USAGE}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


_USAGE = {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}


async def start(aiohttp_server: Any, **emulator_fields: Any) -> tuple[AgentUpstream, Any]:
    """A running emulator and its front: ``(front, emulator)``; ``front.base`` is the
    ``.../v1`` to point an upstream at."""
    module = emulator_module()
    emulator = module.Emulator(**emulator_fields)
    served = await aiohttp_server(emulator.app, host="127.0.0.1")
    front = AgentUpstream(str(served.make_url("/v1")))
    front.base = str((await aiohttp_server(front.app, host="127.0.0.1")).make_url("/v1"))
    return front, emulator
