"""An emulator of the Pollinations.AI upstream (both API generations) for tests.

One aiohttp app serves the three hosts under path prefixes, so one test server stands in
for all of them (point the plugin's base URLs at ``<base>/legacy-text``,
``<base>/legacy-image`` and ``<base>/gen``):

- legacy text host: ``POST /openai``, ``GET /models``, ``GET /<prompt>`` (text, or MP3 with
  ``model=openai-audio``);
- legacy image host: ``GET /prompt/<prompt>``, ``GET /models`` (bare strings);
- gateway: ``POST /v1/chat/completions`` and ``/openai``, ``GET /text/models``,
  ``/image/models``, ``/audio/models``, ``/v1/models``, ``GET /image/<prompt>``,
  ``POST /v1/audio/speech``, ``POST /v1/audio/transcriptions``; chat and audio need a
  Bearer key from ``keys``.

Every request is recorded (``seen``); ``fail(endpoint, mode)`` scripts the documented
failures. The answers are deterministic so tests can assert them.

Built on the kit's ``Upstream``: ``fail(kind, **fields)`` without a mode queues the
conformance suite's faults (``status``, ``stall``, ``cut``, ``empty``, ``hangup``...),
``open_requests`` and ``closed()`` detect a request left open, and ``env(url)`` points
the plugin here: ``g4f-server conformance pollinations --emulator
plugins/pollinations/tests/emulator.py --faults`` (anonymous; ``Emulator(api_key=...)``
sends the plugin to the keyed gateway host).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from g4f_server.testing import png_bytes, wav_bytes
from g4f_server.testing.upstream import EventStream, Upstream

NOTICE = (
    "⚠️ **IMPORTANT NOTICE** ⚠️\n\nThe Pollinations legacy text API is being deprecated for "
    "**authenticated users**.\n\nPlease migrate to our new service at "
    "https://enter.pollinations.ai for better performance and access to all the latest models."
)
STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    402: "PAYMENT_REQUIRED",
    403: "FORBIDDEN",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    504: "GATEWAY_TIMEOUT",
}
# The gateway's 402s (its error body, 2.7): the account is out of Pollen, or its tier is
# below the model's (each model lists its "tier"). Only the message tells them apart.
GATEWAY_MESSAGES = {402: "Insufficient Pollen balance"}
TIER_MESSAGE = "Model 'deepseek-reasoning' requires the 'flower' tier; this key's tier is 'seed'"
TEXT_MODELS: list[dict[str, Any]] = [
    {
        "name": "openai",
        "aliases": ["gpt-5-nano"],
        "description": "OpenAI GPT-5 Nano",
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "tools": True,
        "vision": True,
        "tier": "anonymous",
    },
    {
        "name": "openai-fast",
        "aliases": ["gpt-4.1-nano"],
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "tools": True,
        "tier": "anonymous",
    },
    {
        "name": "openai-audio",
        "aliases": ["gpt-4o-mini-audio-preview"],
        "input_modalities": ["text", "image", "audio"],
        "output_modalities": ["audio", "text"],
        "voices": ["alloy", "echo", "nova"],
        "tools": True,
        "tier": "anonymous",
    },
    {
        "name": "deepseek-reasoning",
        "aliases": ["deepseek-r1"],
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "reasoning": True,
        "tier": "seed",
    },
    {"name": "mistral", "input_modalities": ["text"], "output_modalities": ["text"]},
]
IMAGE_MODELS: list[dict[str, Any]] = [
    {"name": "flux", "input_modalities": ["text"], "output_modalities": ["image"]},
    {"name": "turbo", "input_modalities": ["text"], "output_modalities": ["image"]},
    {"name": "kontext", "input_modalities": ["text", "image"], "output_modalities": ["image"]},
    {"name": "gptimage", "input_modalities": ["text", "image"], "output_modalities": ["image"]},
    {"name": "seedance", "input_modalities": ["text", "image"], "output_modalities": ["video"]},
    {"name": "veo", "input_modalities": ["text"], "output_modalities": ["video"]},
]
LEGACY_IMAGE_MODELS = ["flux", "turbo", "kontext", "gptimage"]
SPEECH_MODELS = {"elevenlabs", "openai-audio", "tts-1"}
AUDIO_MODELS: list[dict[str, Any]] = [
    {"name": "elevenlabs", "output_modalities": ["audio"], "voices": ["alloy", "rachel"]},
    {"name": "openai-audio", "voices": ["alloy", "echo"], "output_modalities": ["audio", "text"]},
    {"name": "whisper", "input_modalities": ["audio"], "output_modalities": ["text"]},
    {"name": "scribe"},  # no modalities: classified by name
]
VIDEO_MODELS = {m["name"] for m in IMAGE_MODELS if "video" in m["output_modalities"]}
FAKE_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32
TRANSCRIPT = "hello world"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>"


# A value of each JSON Schema type, as a model fills a call's arguments ("Paris" for text).
_SAMPLES: dict[str, Any] = {"boolean": True, "integer": 1, "number": 1, "array": [], "object": {}}


def _arguments(parameters: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments: the required properties (every property when none is), each
    with a value of its type, so that a client that checks them (Codex does) can run it."""
    props = parameters.get("properties") or {}
    names = parameters.get("required") or list(props)
    return {
        name: _SAMPLES.get((props.get(name) or {}).get("type"), "Paris")
        for name in names
        if name in props
    }


def png() -> bytes:
    """A tiny valid PNG (the requested size is echoed in headers instead)."""
    return png_bytes(1, 1)


AUDIO_BYTES = {
    "mp3": (FAKE_MP3, "audio/mpeg"),
    "wav": (wav_bytes(), "audio/wav"),
    "opus": (b"OggS" + b"\x00" * 60, "audio/opus"),
    "aac": (b"\xff\xf1" + b"\x00" * 60, "audio/aac"),
    "flac": (b"fLaC" + b"\x00" * 60, "audio/flac"),
    "pcm": (b"\x00\x00" * 64, "audio/pcm"),
}


@dataclass
class Seen:
    """One request the emulator received."""

    host: str  # legacy-text | legacy-image | gen
    endpoint: str  # chat | image | speech | transcription | *_models | legacy_get | audio_get
    method: str
    path: str  # decoded path below the host prefix
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.startswith("Bearer ") else None


@dataclass
class Failure:
    mode: str  # an HTTP status as a string, or stall|error_image|non_image|notice|...
    times: int | None  # None: every time
    retry_after: str | None = None
    message: str | None = None


SEEN = web.RequestKey("seen", Seen)
FAILURE = web.RequestKey("failure", Failure)


# A prompt can script the fake model when tools are offered (a real client's tool list
# is long, and its first tool rarely the one a test wants): "[[call NAME {json}]]" calls
# NAME with those arguments, "[[reply]]" answers in text (the default calls the first tool).
_CALL = re.compile(r"\[\[call ([A-Za-z0-9_.:-]+) (\{.*?\})\]\]", re.S)
REPLY = "[[reply]]"


def _scripted_call(text: str, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    found = _CALL.search(text)
    names = {(t.get("function") or {}).get("name") for t in tools}
    if found is None or found[1] not in names:
        return None
    arguments = orjson.dumps(orjson.loads(found[2])).decode()
    function = {"name": found[1], "arguments": arguments}
    return {"id": "call_emu_1", "type": "function", "function": function}


class Emulator(Upstream):
    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key  # what env() gives the plugin (None: anonymous)
        self.secrets = (api_key,) if api_key else ()
        self.base = ""  # the server's root, set by whoever serves it
        self.requests: list[Seen] = []
        self.failures: dict[str, Failure] = {}
        self.keys = {"sk_test_key", "pk_test_key"}
        self.stall_seconds = 3.0
        # "gated" streams wait for this after their first content chunk.
        self.proceed = asyncio.Event()
        self.content_chunks_sent = 0  # of the last streamed answer
        self.one_write = False  # send a whole streamed answer in one write (one TCP read)
        self._closing = asyncio.Event()
        # The legacy hosts' per-IP limit (2.7), off by default: one request at a time, and a
        # new one only this many seconds after the previous one started; else 429.
        self.min_gap = {"legacy-text": 0.0, "legacy-image": 0.0}
        self.rate_limited: list[Seen] = []  # requests that got the 429 for it
        self._last_start: dict[str, float] = {}
        self._in_flight: dict[str, int] = {}
        self.max_url = 4096  # longer request URLs get a 414, as from the real hosts
        self._endpoints: dict[Any, str] = {}
        self.app = self.make_app()  # an attribute, as before the kit

    def env(self, url: str) -> dict[str, str]:
        """The three hosts here, anonymous calls not spaced (the emulator does not ask it
        unless ``min_gap`` is set), and the key (if any) for the gateway host."""
        env = {
            "POLLINATIONS_TEXT_URL": f"{url}/legacy-text",
            "POLLINATIONS_IMAGE_URL": f"{url}/legacy-image",
            "POLLINATIONS_GEN_URL": f"{url}/gen",
            "POLLINATIONS_ANON_TEXT_INTERVAL": "0",
            "POLLINATIONS_ANON_IMAGE_INTERVAL": "0",
            "POLLINATIONS_API_KEY": self.api_key or "",
        }
        return env

    # --- scripting -----------------------------------------------------------------

    def fail(  # type: ignore[override]
        self,
        endpoint: str = "status",
        mode: str | int | None = None,
        *,
        times: int | None = None,
        retry_after: str | None = None,
        message: str | None = None,
        **fields: Any,
    ) -> Any:
        """Make ``endpoint`` fail ``times`` times (default: until cleared).

        Without a mode, ``fail(kind, **fields)`` is the kit's fault (``kind`` one of
        ``FAULT_KINDS``: the conformance suite's), taken by the next matching request.

        Modes: an HTTP status (400, 401, 402, 403, 429, 500, 502, 504), ``stall`` (no answer
        for ``stall_seconds``), ``notice`` (chat: the deprecation notice as content; legacy
        402: the notice as body), ``error_chunk`` (stream: an error after one chunk),
        ``error_image`` (image with ``x-error-type``), ``non_image`` (text with status 200),
        ``cloudflare`` (403 HTML page), ``cf_challenge`` (403 "Just a moment..." page with
        ``server: cloudflare`` and ``cf-mitigated: challenge``), ``text_plain`` (chat
        answered as text/plain), ``html`` (chat: a 200 text/html page), ``no_events``
        (stream: comments and blank ``data:`` lines only), ``only_done`` (stream: just
        ``data: [DONE]``), ``leading_blank`` (chat: the answer starts with blank lines),
        ``html_audio`` (speech: an HTML page labelled ``audio/mpeg``), ``bad_models``
        (models: not a list), ``gated`` (stream: after the first content chunk, wait for
        ``proceed`` to be set, at most ``stall_seconds``), ``empty`` (chat: 200 with
        ``content: ""``, streamed as role, finish and usage chunks), ``tier`` (gateway: the
        402 for a model above the key's tier; a plain 402 there says "Insufficient Pollen
        balance").
        """
        if mode is None:
            kit = {"times": times} if times is not None else {}
            return super().fail(
                endpoint, **kit, **({"message": message} if message else {}), **fields
            )
        self.failures[endpoint] = Failure(str(mode), times, retry_after, message)
        return None

    def clear(self) -> None:
        super().clear()
        self.failures.clear()

    def seen(self, endpoint: str | None = None, host: str | None = None) -> list[Seen]:
        return [
            r
            for r in self.requests
            if (endpoint is None or r.endpoint == endpoint) and (host is None or r.host == host)
        ]

    def last(self, endpoint: str) -> Seen:
        found = self.seen(endpoint)
        assert found, f"the emulator saw no {endpoint} request"
        return found[-1]

    def _take_failure(self, endpoint: str) -> Failure | None:
        failure = self.failures.get(endpoint)
        if failure is None:
            return None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self.failures[endpoint]
        return failure

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing.set()

    # --- plumbing ------------------------------------------------------------------

    def make_app(self) -> web.Application:
        # The kit's fault middleware first: its faults come before the key check.
        app = web.Application(
            middlewares=[self.middleware, self._middleware], client_max_size=64 * 1024 * 1024
        )
        self.routes(app)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def routes(self, app: web.Application) -> None:
        routes = [
            ("POST", "/legacy-text/openai", "chat", self.chat),
            ("GET", "/legacy-text/models", "text_models", self.legacy_text_models),
            ("GET", "/legacy-text/{prompt:.+}", "legacy_get", self.legacy_get),
            ("GET", "/legacy-image/models", "image_models", self.legacy_image_models),
            ("GET", "/legacy-image/prompt/{prompt:.+}", "image", self.image),
            ("POST", "/gen/v1/chat/completions", "chat", self.chat),
            ("POST", "/gen/openai", "chat", self.chat),
            ("GET", "/gen/text/models", "text_models", self.text_models),
            ("GET", "/gen/image/models", "image_models", self.image_models),
            ("GET", "/gen/audio/models", "audio_models", self.audio_models),
            ("GET", "/gen/v1/models", "openai_models", self.openai_models),
            ("GET", "/gen/image/{prompt:.+}", "image", self.image),
            ("GET", "/gen/audio/{prompt:.+}", "audio_get", self.legacy_get),
            ("GET", "/gen/text/{prompt:.+}", "legacy_get", self.legacy_get),
            ("POST", "/gen/v1/audio/speech", "speech", self.speech),
            ("POST", "/gen/v1/audio/transcriptions", "transcription", self.transcription),
        ]
        for method, path, name, handler in routes:
            self._endpoints[app.router.add_route(method, path, handler)] = name

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        endpoint = self._endpoints.get(request.match_info.route)
        if endpoint is None:
            return await handler(request)
        host, _, rest = request.path.lstrip("/").partition("/")
        raw_rest = request.raw_path.split("?", 1)[0].lstrip("/").partition("/")[2]
        seen = Seen(
            host=host,
            endpoint=endpoint,
            method=request.method,
            path="/" + rest,
            raw_path="/" + raw_rest,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        if request.content_type == "application/json":
            seen.json = orjson.loads(await request.read())
        elif request.content_type == "multipart/form-data":
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    seen.files[name] = (value.filename, value.file.read())
                else:
                    seen.form[name] = str(value)
        self.requests.append(seen)
        request[SEEN] = seen
        if len(str(request.rel_url)) > self.max_url:
            return web.Response(status=414, text="URI Too Long")
        if self.min_gap.get(host) and endpoint in ("chat", "legacy_get", "image"):
            return await self._spaced(host, seen, request, handler)
        if host == "gen" and (response := self._check_key(seen)):
            return response
        failure = self._take_failure(endpoint)
        if failure is not None:
            request[FAILURE] = failure
            if failure.mode == "stall":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.stall_seconds)
            elif failure.mode.isdigit() or failure.mode in ("cloudflare", "cf_challenge", "tier"):
                return self._error(host, failure)
        return await handler(request)

    async def _spaced(
        self, host: str, seen: Seen, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        now = time.monotonic()
        last = self._last_start.get(host)
        if self._in_flight.get(host) or (last is not None and now - last < self.min_gap[host]):
            self.rate_limited.append(seen)
            body = {"error": "Too many requests", "message": "Queue full for IP: 127.0.0.1"}
            return web.json_response(body, status=429)
        self._last_start[host] = now
        self._in_flight[host] = self._in_flight.get(host, 0) + 1
        try:
            failure = self._take_failure(seen.endpoint)
            if failure is not None:
                request[FAILURE] = failure
                if failure.mode.isdigit():
                    return self._error(host, failure)
            return await handler(request)
        finally:
            self._in_flight[host] -= 1

    def _check_key(self, seen: Seen) -> web.Response | None:
        needs_key = seen.endpoint in ("chat", "speech", "transcription")
        key = seen.bearer
        if key is None and not needs_key:
            return None
        if key in self.keys:
            return None
        message = "Invalid API key" if key else "Authentication required. Get a key at enter"
        return self._gateway_error(401, message)

    @staticmethod
    def _gateway_error(status: int, message: str, **headers: str) -> web.Response:
        body = {
            "status": status,
            "success": False,
            "error": {
                "code": STATUS_CODES.get(status, "ERROR"),
                "message": message,
                "timestamp": "2026-08-21T00:00:00Z",
                "details": {},
                "requestId": "req_emu",
                "cause": None,
            },
        }
        return web.json_response(body, status=status, headers=headers)

    def _error(self, host: str, failure: Failure) -> web.Response:
        if failure.mode == "cloudflare":
            page = "<html><title>Attention Required! | Cloudflare</title></html>"
            return web.Response(status=403, text=page, content_type="text/html")
        if failure.mode == "cf_challenge":  # the managed challenge: nothing in the page says so
            page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"
            headers = {"server": "cloudflare", "cf-mitigated": "challenge"}
            return web.Response(status=403, text=page, content_type="text/html", headers=headers)
        if failure.mode == "tier":  # the gateway's 402 for a model above the key's tier
            message = failure.message or TIER_MESSAGE
            return self._gateway_error(402, message)
        status = int(failure.mode)
        headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
        if status == 403:
            message = failure.message or "Insufficient Pollen balance"
            return web.json_response(
                {"error": "Forbidden", "message": message}, status=403, headers=headers
            )
        if status == 429:
            body = {"error": "Too many requests", "message": failure.message or "Slow down"}
            return web.json_response(body, status=429, headers=headers)
        if host != "gen":
            # The legacy hosts answer errors as text (402 carries the notice).
            text = failure.message or (NOTICE if status == 402 else f"Error {status}")
            return web.Response(status=status, text=text, headers=headers)
        message = failure.message or GATEWAY_MESSAGES.get(status, f"emulated {status}")
        return self._gateway_error(status, message, **headers)

    # --- models --------------------------------------------------------------------

    def _models_failure(self, request: web.Request) -> web.Response | None:
        failure = request.get(FAILURE)
        if failure and failure.mode == "bad_models":
            return web.json_response({"oops": True})
        return None

    async def text_models(self, request: web.Request) -> web.Response:
        return self._models_failure(request) or web.json_response(TEXT_MODELS)

    async def legacy_text_models(self, request: web.Request) -> web.Response:
        return web.json_response(TEXT_MODELS)

    async def image_models(self, request: web.Request) -> web.Response:
        return self._models_failure(request) or web.json_response(IMAGE_MODELS)

    async def legacy_image_models(self, request: web.Request) -> web.Response:
        return self._models_failure(request) or web.json_response(LEGACY_IMAGE_MODELS)

    async def audio_models(self, request: web.Request) -> web.Response:
        return self._models_failure(request) or web.json_response(AUDIO_MODELS)

    async def openai_models(self, request: web.Request) -> web.Response:
        data = [{"id": m["name"], "object": "model"} for m in TEXT_MODELS]
        return web.json_response({"object": "list", "data": data})

    # --- chat ----------------------------------------------------------------------

    def _answer(self, body: dict[str, Any], failure: Failure | None) -> dict[str, Any]:
        """What the fake model says: driven by the request so tests can assert it."""
        model = str(body.get("model") or "openai")
        messages = body.get("messages") or []
        # The turn answered: the last message but system ones (a client may put a system
        # entry after the user's, as Claude Code does).
        turns = [m for m in messages if m.get("role") not in ("system", "developer")]
        last = turns[-1] if turns else messages[-1] if messages else {}
        parts = last.get("content") if isinstance(last.get("content"), list) else []
        text = (
            last.get("content")
            if isinstance(last.get("content"), str)
            else " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
        )
        answer: dict[str, Any] = {"content": None, "reasoning": None, "tool_calls": None}
        if "reasoning" in model:
            answer["reasoning"] = "Let me think about it. "
        tools = body.get("tools") or []
        if failure and failure.mode == "empty":
            answer["content"] = ""
        elif failure and failure.mode == "notice":
            answer["content"] = NOTICE
        elif failure and failure.mode == "leading_blank":
            answer["content"] = f"\n\n \n  Echo: {text}"
        elif "audio" in (body.get("modalities") or []):
            answer["audio"] = {
                "data": base64.b64encode(
                    HTML_PAGE if failure and failure.mode == "html_audio" else FAKE_MP3
                ).decode(),
                "transcript": f"Spoken: {text}",
                "id": "audio_emu",
            }
        elif any(p.get("type") == "input_audio" for p in parts):
            answer["content"] = TRANSCRIPT
        elif tools and (scripted := _scripted_call(text, tools)):
            answer["tool_calls"] = [scripted]
        elif tools and REPLY in text:
            answer["content"] = f"Echo: {text}"
        elif tools and last.get("role") != "tool" and body.get("tool_choice") != "none":
            function = tools[0]["function"]
            arguments = orjson.dumps(_arguments(function.get("parameters") or {})).decode()
            answer["tool_calls"] = [
                {
                    "id": "call_emu_1",
                    "type": "function",
                    "function": {"name": function["name"], "arguments": arguments},
                }
            ]
        elif last.get("role") == "tool":
            answer["content"] = f"The tool said: {last.get('content')}"
        elif (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            answer["content"] = '{"answer": 42}'
        elif images := [p for p in parts if p.get("type") == "image_url"]:
            kinds = ["data" if p["image_url"]["url"].startswith("data:") else "url" for p in images]
            answer["content"] = f"I see {len(images)} image(s): {', '.join(kinds)}"
        else:
            answer["content"] = f"Echo: {text}"
        return answer

    @staticmethod
    def _usage(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        completion = len(str(answer.get("content") or "").split()) + 1
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    async def chat(self, request: web.Request) -> web.StreamResponse:
        seen: Seen = request[SEEN]
        body = seen.json
        if not isinstance(body, dict) or not body.get("messages") or not body.get("model"):
            return self._gateway_error(400, "messages and model are required")
        failure: Failure | None = request.get(FAILURE)
        taken = self.fault(request)  # the kit's: a stream honours cut/hangup in EventStream
        if failure is None and taken is not None and taken.kind == "empty":
            failure = Failure("empty", 1)
        answer = self._answer(body, failure)
        model = f"{body['model']}-emu"
        finish = "tool_calls" if answer["tool_calls"] else "stop"
        usage = self._usage(body, answer)
        # What the real hosts send (streams carry the usage as HTTP trailers instead).
        headers = {"x-model-used": model}
        if not body.get("stream"):
            headers |= {
                "x-usage-prompt-text-tokens": str(usage["prompt_tokens"]),
                "x-usage-completion-text-tokens": str(usage["completion_tokens"]),
                "x-usage-total-tokens": str(usage["total_tokens"]),
            }
        if failure and failure.mode == "text_plain":
            text = answer["content"] or ""
            return web.Response(text=text, content_type="text/plain", headers=headers)
        if failure and failure.mode == "html":  # e.g. a proxy's or CDN's page, with 200
            page = "<html><head><title>Service Unavailable</title></head><body>Down</body></html>"
            return web.Response(text=page, content_type="text/html")
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer["content"]}
            if answer["reasoning"]:
                message["reasoning_content"] = answer["reasoning"]
            if answer["tool_calls"]:
                message["tool_calls"] = answer["tool_calls"]
            if answer.get("audio"):
                message["audio"] = answer["audio"]
            completion = {
                "id": "chatcmpl-emu",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
                "citations": ["https://example.com/source"] if "cite" in model else [],
            }
            return web.json_response(completion, headers=headers)
        stream = await EventStream.open(request, headers=headers)
        resp = stream.response
        held: list[bytes] = []

        async def write(data: bytes) -> None:
            if self.one_write:
                held.append(data)
            elif not stream.gone:
                await resp.write(data)

        async def part(chunk: dict[str, Any]) -> None:
            """A part of the answer: the kit's cut and hangup count these."""
            if self.one_write:
                held.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
            else:
                await stream.send(chunk)

        def chunk_of(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any):
            return {
                "id": "chatcmpl-emu",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }

        async def send(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any):
            await part(chunk_of(delta, finish_reason, **extra))

        await write(b": keep-alive\n\ndata:\n\n")  # comments and blank data lines occur
        if failure and failure.mode in ("no_events", "only_done"):
            done = b"data: [DONE]\n\n" if failure.mode == "only_done" else b""
            await resp.write(b"".join(held) + done)
            return resp
        # The role chunk opens the stream (not a part: "after=1" means after some text).
        role = chunk_of({"role": "assistant", "content": ""})
        await write(b"data: " + orjson.dumps(role) + b"\n\n")
        if answer["reasoning"]:
            await send({"reasoning_content": answer["reasoning"]})
        content = answer["content"] or ""
        self.content_chunks_sent = 0
        for i in range(0, len(content), 5):
            await send({"content": content[i : i + 5]})
            self.content_chunks_sent += 1
            if i == 0 and failure and failure.mode == "gated":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proceed.wait(), self.stall_seconds)
            if failure and failure.mode == "error_chunk":
                err = {"error": {"message": "upstream model crashed", "code": "INTERNAL_ERROR"}}
                await write(b"data: " + orjson.dumps(err) + b"\n\n")
                await resp.write(b"".join(held))
                return resp
        for i, call in enumerate(answer["tool_calls"] or []):
            head = {"index": i, "id": call["id"], "type": "function"}
            head["function"] = {"name": call["function"]["name"], "arguments": ""}
            await send({"tool_calls": [head]})
            args = call["function"]["arguments"]
            for j in range(0, len(args), 7):
                piece = {"index": i, "function": {"arguments": args[j : j + 7]}}
                await send({"tool_calls": [piece]})
        await send({}, finish)
        usage_chunk = {"id": "chatcmpl-emu", "object": "chat.completion.chunk", "model": model}
        usage_chunk |= {"choices": [], "usage": usage}
        await part(usage_chunk)
        if self.one_write:
            await resp.write(b"".join(held) + b"data: [DONE]\n\n")
            return resp
        return await stream.end()

    # --- images --------------------------------------------------------------------

    async def image(self, request: web.Request) -> web.Response:
        seen: Seen = request[SEEN]
        failure: Failure | None = request.get(FAILURE)
        model = seen.query.get("model", "flux")
        echo = {
            f"x-emu-{name}": seen.query[name]
            for name in ("width", "height", "seed", "model")
            if name in seen.query
        }
        if failure and failure.mode == "error_image":
            headers = {"x-error-type": "Content moderation", **echo}
            return web.Response(body=png(), content_type="image/png", headers=headers)
        if model == "gptimage" and ("width" in seen.query or "height" in seen.query):
            # The emulator's stand-in for 2.4: gptimage takes its shape from the prompt.
            return self._gateway_error(400, "gptimage takes no width/height: name the ratio")
        if failure and failure.mode == "non_image":
            return web.Response(
                text=failure.message or "Something went wrong", content_type="text/plain"
            )
        if model in VIDEO_MODELS:
            return web.Response(body=FAKE_MP4, content_type="video/mp4", headers=echo)
        return web.Response(body=png(), content_type="image/png", headers=echo)

    # --- audio ---------------------------------------------------------------------

    async def legacy_get(self, request: web.Request) -> web.Response:
        seen: Seen = request[SEEN]
        failure: Failure | None = request.get(FAILURE)
        if failure and failure.mode == "notice":
            return web.Response(text=NOTICE, content_type="text/plain")
        if failure and failure.mode == "html_audio":
            return web.Response(body=HTML_PAGE, content_type="audio/mpeg")
        if seen.query.get("model") == "openai-audio" or seen.endpoint == "audio_get":
            return web.Response(body=FAKE_MP3, content_type="audio/mpeg")
        return web.Response(text=f"Echo: {request.match_info['prompt']}")

    async def speech(self, request: web.Request) -> web.Response:
        body = request[SEEN].json
        failure: Failure | None = request.get(FAILURE)
        if failure and failure.mode == "html_audio":
            return web.Response(body=HTML_PAGE, content_type="audio/mpeg")
        if not isinstance(body, dict) or not body.get("input"):
            return self._gateway_error(400, "input is required")
        fmt = body.get("response_format", "mp3")
        if body.get("model") and body["model"] not in SPEECH_MODELS:  # none: tts-1
            return self._gateway_error(400, f"Unknown model: {body.get('model')}")
        if fmt not in AUDIO_BYTES:
            return self._gateway_error(400, f"unknown response_format {fmt}")
        data, mime = AUDIO_BYTES[fmt]
        headers = {
            "x-model-used": str(body.get("model") or "elevenlabs"),
            "x-tts-voice": str(body.get("voice") or "alloy"),
            "x-usage-characters": str(len(body["input"])),
        }
        return web.Response(body=data, content_type=mime, headers=headers)

    async def transcription(self, request: web.Request) -> web.Response:
        seen: Seen = request[SEEN]
        if "file" not in seen.files:
            return self._gateway_error(400, "file is required")
        if seen.form.get("response_format") == "verbose_json":
            return web.json_response(
                {
                    "text": TRANSCRIPT,
                    "language": seen.form.get("language", "english"),
                    "duration": 0.2,
                    "segments": [{"id": 0, "start": 0.0, "end": 0.2, "text": TRANSCRIPT}],
                }
            )
        if seen.form.get("response_format") == "text":
            return web.Response(text=TRANSCRIPT)
        return web.json_response({"text": TRANSCRIPT})
