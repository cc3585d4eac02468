"""An emulator of an OpenAI-compatible upstream, for tests (127.0.0.1 only).

It speaks the documented protocol under ``/v1``: ``GET /models``, ``POST
/chat/completions`` (server-sent events when ``stream`` is true, one JSON object
otherwise), ``POST /embeddings``. It checks the Bearer key, and it can enforce a
preset's documented quirks (``refused`` request fields and message fields answer 400,
as Groq and Cerebras do). Built on the kit's ``Upstream``: the conformance suite's
faults (``fail("status", status=401)``, ``"stall"``, ``"cut"``, ``"empty"``,
``"hangup"``...) work as documented there, ``open_requests`` and ``closed()`` detect a
client that left its request open, and ``env(url)`` points the Groq preset here (``g4f-server
conformance openai_compat --emulator plugins/openai_compat/tests/emulator.py --faults
--upstreams groq``). Every request is recorded in ``seen``; ``fail(endpoint, mode)``
(an endpoint and a mode: this upstream's own vocabulary) scripts the next answers'
failures:

- ``401`` / ``403``: the key refused; ``429``: rate limited, with ``Retry-After`` and/or
  ``x-ratelimit-*`` headers; ``500``/``503``: a server error;
- ``"stall"``: no answer at all (until the client hangs up);
- ``"cut"``: a stream that stops after two chunks, without a finish reason or ``[DONE]``
  (a JSON answer: half of its body);
- ``"error_first"`` / ``"error_later"``: an ``{"error": ...}`` object in the stream,
  before any text or after some (OpenRouter documents this shape); a JSON answer: a 200
  holding only the error object;
- embeddings only: ``"base64"`` (base64 vectors whatever was asked), ``"short"`` (one
  vector fewer than inputs), ``"nodata"`` (a 200 with an error object instead of ``data``).

The answers are deterministic, so tests can assert them:
- embeddings: ``vector_for(input, size)`` per input (``dimensions`` numbers when given,
  else 8), floats or little-endian float32 base64 as ``encoding_format`` asks (OpenAI's
  default is floats); ``usage.prompt_tokens`` counts words (or token ids). Any listed model
  whose id has "embed" embeds; one with "fixed" in it refuses ``dimensions`` (400, as
  OpenAI's ada-002 does); token-id input is a 400 unless ``token_ids`` (OpenAI takes it);
- "Echo: <last user text>" (one SSE chunk per word);
- with ``tools`` and no tool result yet: a ``get_weather`` call for Paris, its
  arguments split over two chunks; after a tool result: "The tool said: <result>";
- with image parts: "I see N image(s). " before the echo;
- with ``response_format`` json_object/json_schema: ``{"answer": "<last user text>"}``;
- for a model whose id contains "think": ``reasoning_content`` before the answer.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from g4f_server.testing.upstream import EventStream, Upstream, hold

KEY = "test-key"
_JSON = "application/json"
MODELS: list[dict[str, Any]] = [
    {"id": "llama-3.3-70b-versatile", "object": "model", "owned_by": "Meta"},
    {"id": "deep-think-r1", "object": "model", "owned_by": "DeepSeek"},
    {"id": "meta-llama/llama-4-scout-17b-16e-instruct", "object": "model", "owned_by": "Meta"},
    {"id": "text-embed-small", "object": "model", "owned_by": "Emu"},
    {"id": "text-embed-fixed", "object": "model", "owned_by": "Emu"},
]
EMBEDDING_SIZE = 8


def vector_for(item: str | list[int], size: int = EMBEDDING_SIZE) -> list[float]:
    """The emulator's embedding of one input: different for each input."""
    seed = zlib.crc32(item.encode() if isinstance(item, str) else repr(item).encode())
    return [(((seed >> (j % 20)) & 1023) - 512) / 1024 for j in range(size)]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Scripted:
    """A failure of this upstream's own vocabulary, queued by ``fail(endpoint, mode)``."""

    mode: Any
    times: int
    headers: dict[str, str]


@dataclass(eq=False)
class Emulator(Upstream):
    key: str | None = KEY
    models: list[dict[str, Any]] = field(default_factory=lambda: [dict(m) for m in MODELS])
    refused: frozenset[str] = frozenset()
    refused_message_fields: frozenset[str] = frozenset()
    seen: list[Seen] = field(default_factory=list)
    scripted: dict[str, list[Scripted]] = field(default_factory=dict)
    open_streams: int = 0
    chunk_delay: float = 0.0
    token_ids: bool = False  # /embeddings takes token-id input (OpenAI's does)
    base: str = ""  # the OpenAI base URL (``<url>/v1``), set by whoever serves it

    secrets = (KEY,)  # the conformance suite checks that no log line holds it

    def __post_init__(self) -> None:
        Upstream.__init__(self)

    @property
    def app(self) -> web.Application:  # type: ignore[override]
        """A new application serving the emulator (an attribute, as before the kit)."""
        return self.make_app()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)

    def env(self, url: str) -> dict[str, str]:
        """The Groq preset pointed here (the gateway runs with ``upstreams=["groq"]``)."""
        return {"GROQ_BASE_URL": f"{url}/v1", "GROQ_API_KEY": self.key or KEY}

    def fail(  # type: ignore[override]
        self, endpoint: str = "status", mode: Any = None, *, times: int = 1, **fields: Any
    ) -> Any:
        """``fail("chat", 429, retry_after="7")``: the next ``times`` calls to ``endpoint``
        ("models", "chat", "embeddings") fail in ``mode`` (the module's list; the keywords
        are response headers). Without a mode, ``fail(kind, **fields)`` is the kit's
        fault (``kind`` one of ``FAULT_KINDS``), as the conformance suite queues it."""
        if mode is None:
            return super().fail(endpoint, times=times, **fields)
        self.scripted.setdefault(endpoint, []).append(Scripted(mode, times, fields))
        return None

    def clear(self) -> None:
        super().clear()
        self.scripted.clear()

    def calls(self, endpoint: str) -> list[Seen]:
        """The requests to "chat", "models" or "embeddings", in order."""
        path = {"chat": "/v1/chat/completions"}.get(endpoint, f"/v1/{endpoint}")
        return [s for s in self.seen if s.path == path]

    def last(self, endpoint: str) -> Seen:
        return self.calls(endpoint)[-1]

    # --- plumbing -------------------------------------------------------------------

    def _scripted(self, endpoint: str) -> Scripted | None:
        queue = self.scripted.get(endpoint) or []
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    async def _record(self, request: web.Request) -> Any:
        body = await request.read()
        data = orjson.loads(body) if body else None
        self.seen.append(Seen(request.path, dict(request.headers), data))
        return data

    def _authorized(self, request: web.Request) -> bool:
        return self.key is None or request.headers.get("Authorization") == f"Bearer {self.key}"

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        kind = "invalid_request_error" if status < 500 else "server_error"
        body = {"error": {"message": message, "type": kind, "code": str(status)}}
        return web.json_response(body, status=status, headers=headers or {})

    async def _http_fault(self, fault: Scripted | None) -> web.StreamResponse | None:
        if fault is None or not isinstance(fault.mode, int):
            return None
        messages = {
            401: "Invalid API Key",
            403: "Forbidden: this key may not use the API",
            429: "Rate limit reached for requests",
            500: "Internal server error",
            503: "Service unavailable",
        }
        return self._error(fault.mode, messages.get(fault.mode, "error"), fault.headers)

    @staticmethod
    async def _stall(request: web.Request) -> web.StreamResponse:
        await hold(request)
        return web.Response(status=504)  # nobody is left to read it

    # --- endpoints ------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        fault = self._scripted("models")
        if fault is not None and fault.mode == "stall":
            return await self._stall(request)
        if (answer := await self._http_fault(fault)) is not None:
            return answer
        if not self._authorized(request):
            return self._error(401, "Invalid API Key")
        return web.json_response({"object": "list", "data": self.models})

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        data = await self._record(request)
        fault = self._scripted("embeddings")
        if fault is not None and fault.mode == "stall":
            return await self._stall(request)
        if (answer := await self._http_fault(fault)) is not None:
            return answer
        if not self._authorized(request):
            return self._error(401, "Invalid API Key")
        if refused := sorted(self.refused & set(data)):
            return self._error(400, f"property '{refused[0]}' is unsupported")
        model = data.get("model")
        if not any(m.get("id") == model and "embed" in model for m in self.models):
            return self._error(404, f"The model `{model}` does not exist or cannot embed")
        given = data.get("input")
        if isinstance(given, str) or (given and isinstance(given[0], int)):
            inputs = [given]
        else:
            inputs = given or []
        if not inputs or any(not item for item in inputs):
            return self._error(400, "'$.input' is invalid: empty input")
        if any(not isinstance(item, str) for item in inputs) and not self.token_ids:
            return self._error(400, "'input' must be a string or an array of strings")
        size = EMBEDDING_SIZE
        if data.get("dimensions") is not None:
            if "fixed" in model:
                return self._error(400, "This model does not support specifying dimensions.")
            size = int(data["dimensions"])
        vectors = [vector_for(item, size) for item in inputs]
        if fault is not None and fault.mode == "short":
            vectors.pop()
        if fault is not None and fault.mode == "nodata":
            return web.json_response({"error": {"message": "embedding backend is warming up"}})
        as_base64 = data.get("encoding_format") == "base64" or (
            fault is not None and fault.mode == "base64"
        )
        items = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _float32_base64(v) if as_base64 else v,
            }
            for i, v in enumerate(vectors)
        ]
        items.reverse()  # "index" says the order: a client must not rely on the list's
        tokens = sum(len(x.split()) if isinstance(x, str) else len(x) for x in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": items,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        data = await self._record(request)
        fault = self._scripted("chat")
        if fault is not None and fault.mode == "stall":
            return await self._stall(request)
        if (answer := await self._http_fault(fault)) is not None:
            return answer
        if not self._authorized(request):
            return self._error(401, "Invalid API Key")
        if refused := sorted(self.refused & set(data)):
            return self._error(400, f"property '{refused[0]}' is unsupported")
        for message in data["messages"]:
            if refused := sorted(self.refused_message_fields & set(message)):
                return self._error(400, f"'messages.{refused[0]}' : property is unsupported")
        if not any(m.get("id") == data["model"] for m in self.models):
            return self._error(404, f"The model `{data['model']}` does not exist")
        reasoning, text, calls = answer_for(data)
        taken = self.fault(request)  # the kit's: a stream honours it in EventStream
        if taken is not None and taken.kind == "empty":
            reasoning, text, calls = "", "", []
        if not data.get("stream"):
            completion = orjson.dumps(self._completion(data, reasoning, text, calls))
            if fault is not None and fault.mode == "cut":  # the body ends half way
                return web.Response(body=completion[: len(completion) // 2], content_type=_JSON)
            if fault is not None and fault.mode in ("error_first", "error_later"):
                return web.json_response({"error": {"message": "upstream model crashed"}})
            return web.Response(body=completion, content_type=_JSON)
        return await self._stream(request, data, reasoning, text, calls, fault)

    def _completion(
        self, data: dict[str, Any], reasoning: str, text: str, calls: list[dict[str, Any]]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if reasoning:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = calls
        return {
            "id": "chatcmpl-emu",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": data["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
        }

    async def _stream(
        self,
        request: web.Request,
        data: dict[str, Any],
        reasoning: str,
        text: str,
        calls: list[dict[str, Any]],
        fault: Scripted | None,
    ) -> web.StreamResponse:
        stream = await EventStream.open(request)
        resp = stream.response  # returned without end(): no [DONE] (a cut of our own)
        self.open_streams += 1
        try:
            base = {"id": "chatcmpl-emu", "object": "chat.completion.chunk", "model": data["model"]}

            async def send(obj: Any) -> None:
                await stream.send(obj)
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)

            def delta(d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                return {**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

            await resp.write(b": keep-alive comment, as OpenRouter sends\n\n")
            if fault is not None and fault.mode == "error_first":
                await send({"error": {"message": "upstream model crashed", "code": 502}})
                return resp
            # The role chunk opens the stream: the kit's faults (cut, hangup) count the
            # parts of the answer after it, so "after=1" means after some text.
            role = delta({"role": "assistant", "content": ""})
            await resp.write(b"data: " + orjson.dumps(role) + b"\n\n")
            if reasoning:
                await send(delta({"reasoning_content": reasoning}))
            words = text.split(" ") if text else []
            for i, word in enumerate(words):
                await send(delta({"content": word if i == 0 else " " + word}))
                if i == 1 and fault is not None and fault.mode == "cut":
                    return resp  # the connection ends: no finish reason, no [DONE]
                if i == 1 and fault is not None and fault.mode == "error_later":
                    await send({"error": {"message": "upstream model crashed", "code": 502}})
                    return resp
            for call in calls:
                args = call["function"]["arguments"]
                first = {**call, "function": {**call["function"], "arguments": args[:9]}}
                await send(delta({"tool_calls": [first]}))
                rest = {"index": call["index"], "function": {"arguments": args[9:]}}
                await send(delta({"tool_calls": [rest]}))
            await send(delta({}, "tool_calls" if calls else "stop"))
            if (data.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
                await send({**base, "choices": [], "usage": usage})
            return await stream.end()
        finally:
            self.open_streams -= 1


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def answer_for(data: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """(reasoning, text, tool calls) for a chat request, deterministically."""
    messages = data["messages"]
    last = messages[-1]
    reasoning = "Let me think." if "think" in data["model"] else ""
    if last.get("role") == "tool":
        return reasoning, f"The tool said: {_text(last)}", []
    if data.get("tools") and data.get("tool_choice") != "none":
        arguments = orjson.dumps({"city": "Paris"}).decode()
        call = {
            "index": 0,
            "id": "call_emu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": arguments},
        }
        return reasoning, "", [call]
    users = [m for m in messages if m.get("role") == "user"]
    said = _text(users[-1]) if users else ""
    fmt = (data.get("response_format") or {}).get("type")
    if fmt in ("json_object", "json_schema"):
        return reasoning, orjson.dumps({"answer": said}).decode(), []
    images = sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for p in m["content"]
        if p.get("type") == "image_url"
    )
    seen = f"I see {images} image(s). " if images else ""
    return reasoning, f"{seen}Echo: {said}", []


def _float32_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
