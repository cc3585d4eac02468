"""Chat: the request body Pollinations accepts, its JSON/SSE answers read into events,
and the limits we apply ourselves where the legacy host ignores them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp
import orjson
from g4f_server.errors import ProviderError
from g4f_server.events import (
    ChatEvent,
    Citation,
    Finish,
    Media,
    ModelUsed,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from g4f_server.provider import ProviderContext
from g4f_server.schemas.chat import ChatRequest

from g4f_server_pollinations import errors, transport
from g4f_server_pollinations.config import api_key, auth_headers, settings

# OpenAI fields forwarded when the client set them (both hosts accept these).
_FORWARD = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "seed",
)
# Extra (non-schema) fields the upstream documents; anything else stays with us.
_FORWARD_EXTRA = (
    "reasoning_effort",
    "logit_bias",
    "modalities",
    "audio",
    "voice",
    "prompt_cache_key",
)
# Only the gateway documents these; the legacy host ignores them, so we enforce them.
_GATEWAY_EXTRA = (
    "thinking",
    "thinking_budget",
    "repetition_penalty",
    "logprobs",
    "top_logprobs",
)
_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
AUDIO_MIME = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "pcm": "audio/pcm",
    "pcm16": "audio/pcm",
}
# Chars per token for the legacy host's max_tokens, which we must cut ourselves.
_CHARS_PER_TOKEN = 4
# How much answer text to hold back before the first event, to recognise the legacy
# host's deprecation notice while the router can still fail over.
_NOTICE_WINDOW = 64


def build_body(request: ChatRequest, *, keyed: bool) -> dict[str, Any]:
    """The upstream request body: what the client set and the upstream accepts."""
    messages = []
    for message in request.messages:
        item = message.model_dump(exclude_none=True, mode="json")
        if item["role"] == "developer":  # not every upstream model knows this role
            item["role"] = "system"
        messages.append(item)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    for name in _FORWARD:
        value = getattr(request, name)
        if value is not None:
            body[name] = (
                value.model_dump(exclude_none=True, mode="json")
                if hasattr(value, "model_dump")
                else [t.model_dump(exclude_none=True, mode="json") for t in value]
                if name == "tools"
                else value
            )
    if "tools" in body:
        body.pop("seed", None)  # the upstream caches by seed; tool answers must not repeat
    extra = request.model_extra or {}
    for name in _FORWARD_EXTRA + (_GATEWAY_EXTRA if keyed else ()):
        if extra.get(name) is not None:
            body[name] = extra[name]
    if keyed:
        if request.token_limit:
            body["max_tokens"] = request.token_limit
        if request.stop:
            body["stop"] = request.stop
        if request.user:
            body["user"] = request.user
    wants_audio = "audio" in (body.get("modalities") or ())
    if wants_audio:
        body.setdefault("audio", {"voice": body.get("voice", "alloy"), "format": "mp3"})
    # Audio answers come as one base64 blob; streaming them buys nothing.
    body["stream"] = request.stream and not wants_audio
    if body["stream"] and keyed:
        body["stream_options"] = {"include_usage": True}
    return body


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict) or not isinstance(data.get("prompt_tokens"), int):
        return None
    details = {
        k: v for k, v in data.items() if k.endswith("_details") and isinstance(v, dict) and v
    }
    return Usage(
        prompt_tokens=data["prompt_tokens"],
        completion_tokens=int(data.get("completion_tokens") or 0),
        total_tokens=data.get("total_tokens"),
        details=details,
    )


def _citations(data: dict[str, Any], seen: set[str]) -> list[Citation]:
    out = []
    for item in data.get("citations") or ():
        url = item if isinstance(item, str) else item.get("url") if isinstance(item, dict) else None
        if isinstance(url, str) and url not in seen:
            seen.add(url)
            title = item.get("title") if isinstance(item, dict) else None
            out.append(Citation(url=url, title=title))
    return out


def _raise_if_error(data: Any) -> None:
    if isinstance(data, dict) and data.get("error"):
        raise ProviderError(
            f"Pollinations reported an error: {errors.message_of(orjson.dumps(data))}"
        )


async def _sse_payloads(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """``data:`` payloads of an SSE body, without aiohttp's line-length limit (a chunk
    can carry a large base64 blob)."""
    buf = bytearray()
    async for piece in resp.content.iter_any():
        buf += piece
        while (end := buf.find(b"\n")) >= 0:
            line = bytes(buf[:end]).strip()
            del buf[: end + 1]
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            if data:
                yield data
    tail = bytes(buf).strip()
    if tail.startswith(b"data:") and tail[5:].strip() not in (b"", b"[DONE]"):
        yield tail[5:].strip()


async def _read_stream(resp: aiohttp.ClientResponse) -> AsyncIterator[ChatEvent]:
    model_seen = False
    cited: set[str] = set()
    async for payload in _sse_payloads(resp):
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise ProviderError("Pollinations sent a malformed stream chunk") from None
        _raise_if_error(chunk)
        if not isinstance(chunk, dict):
            continue
        if not model_seen and chunk.get("model"):
            model_seen = True
            yield ModelUsed(str(chunk["model"]))
        for citation in _citations(chunk, cited):
            yield citation
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                yield ReasoningDelta(reasoning)
            if isinstance(delta.get("content"), str) and delta["content"]:
                yield TextDelta(delta["content"])
            for i, call in enumerate(delta.get("tool_calls") or ()):
                function = call.get("function") or {}
                yield ToolCallDelta(
                    index=int(call.get("index", i)),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments") or "",
                )
            if choice.get("finish_reason"):
                yield Finish(_FINISH.get(choice["finish_reason"], "stop"))  # type: ignore[arg-type]
        if usage := _usage(chunk.get("usage")):
            yield usage


def read_completion(data: Any, audio_format: str) -> list[ChatEvent]:
    if isinstance(data, list):  # seen from the legacy host: a one-element array
        data = data[0] if data else {}
    _raise_if_error(data)
    if not isinstance(data, dict) or not data.get("choices"):
        raise ProviderError("Pollinations answered without choices")
    events: list[ChatEvent] = []
    if data.get("model"):
        events.append(ModelUsed(str(data["model"])))
    events += _citations(data, set())
    choice = data["choices"][0]
    message = choice.get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        events.append(ReasoningDelta(reasoning))
    content = message.get("content")
    audio = message.get("audio") if isinstance(message.get("audio"), dict) else None
    if isinstance(content, str) and content:
        events.append(TextDelta(content))
    elif audio and isinstance(audio.get("transcript"), str):
        events.append(TextDelta(audio["transcript"]))
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        events.append(
            ToolCallDelta(
                index=i,
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    if audio and isinstance(audio.get("data"), str):
        mime = AUDIO_MIME.get(audio_format, "audio/mpeg")
        events.append(Media(kind="audio", data=base64.b64decode(audio["data"]), mime_type=mime))
    if usage := _usage(data.get("usage")):
        events.append(usage)
    if choice.get("finish_reason"):
        events.append(Finish(_FINISH.get(choice["finish_reason"], "stop")))  # type: ignore[arg-type]
    return events


async def _read(resp: aiohttp.ClientResponse, body: dict[str, Any]) -> AsyncIterator[ChatEvent]:
    kind = resp.content_type
    if kind == "text/event-stream":
        async for event in _read_stream(resp):
            yield event
    elif kind == "application/json" or kind.endswith("+json"):
        audio_format = (body.get("audio") or {}).get("format", "mp3")
        try:
            data = orjson.loads(await resp.read())
        except orjson.JSONDecodeError:
            raise ProviderError("Pollinations sent malformed JSON") from None
        for event in read_completion(data, audio_format):
            yield event
    elif kind.startswith("audio/"):
        yield Media(kind="audio", data=await resp.read(), mime_type=kind)
    elif kind.startswith("text/"):  # the legacy host answers plain text for some models
        text = await resp.text()
        if text:
            yield TextDelta(text)
    else:
        raise ProviderError(f"Pollinations answered an unexpected content type {kind!r}")


class _StopCut:
    """Cuts the text at the first stop sequence, holding back just enough to see one
    split across chunks."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.buf += text
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[: min(hits)], ""
            return out, True
        cut = max(0, len(self.buf) - self.hold)
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


async def _shape(
    events: AsyncIterator[ChatEvent], request: ChatRequest, *, keyed: bool
) -> AsyncIterator[ChatEvent]:
    """Notice detection, stop sequences and (legacy) max_tokens over the raw events."""
    # The gateway honours max_tokens and stop itself; the legacy host does neither.
    stop = _StopCut([] if keyed else list(request.stop or ()))
    budget = None if keyed or not request.token_limit else request.token_limit * _CHARS_PER_TOKEN
    held: list[ChatEvent] | None = []  # events held until the notice check passed
    held_text = ""
    reason: str | None = None
    saw_tools = False
    emitted = 0

    def release() -> list[ChatEvent]:
        nonlocal held
        if errors.is_notice(held_text):
            raise errors.notice_error(held_text)
        out, held = held or [], None
        return out

    async def gate(event: ChatEvent) -> AsyncIterator[ChatEvent]:
        nonlocal held_text
        if held is None:
            yield event
            return
        held.append(event)
        if isinstance(event, TextDelta):
            held_text += event.text
            if len(held_text) < _NOTICE_WINDOW:
                return
        elif isinstance(event, ModelUsed):
            return
        for ready in release():
            yield ready

    limited = False
    async for event in events:
        if isinstance(event, Finish):
            reason = event.reason
            continue
        if isinstance(event, ToolCallDelta):
            saw_tools = True
        if isinstance(event, TextDelta):
            text, stopped = stop.feed(event.text)
            if budget is not None and emitted + len(text) > budget:
                text, limited = text[: budget - emitted], True
            emitted += len(text)
            if text:
                async for out in gate(TextDelta(text)):
                    yield out
            if stopped or limited:
                reason = "length" if limited else "stop"
                break
            continue
        async for out in gate(event):
            yield out
    else:
        if tail := stop.flush():
            if budget is not None and emitted + len(tail) > budget:
                tail, reason = tail[: budget - emitted], "length"
            async for out in gate(TextDelta(tail)):
                yield out
    if held is not None:
        for out in release():
            yield out
    if saw_tools and reason in (None, "stop"):
        reason = "tool_calls"
    yield Finish(reason or "stop")  # type: ignore[arg-type]


async def chat(request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[ChatEvent]:
    cfg = settings()
    key = api_key(ctx, cfg)
    keyed = key is not None
    url = f"{cfg.gen_url}/v1/chat/completions" if keyed else f"{cfg.text_url}/openai"
    body = build_body(request, keyed=keyed)
    headers = {"Content-Type": "application/json", **auth_headers(key)}
    async with (
        transport.anonymous_slot(ctx, cfg, "text", keyed=keyed),
        transport.call(
            ctx, "POST", url, keyed=keyed, what="chat", data=orjson.dumps(body), headers=headers
        ) as resp,
        aclosing(_read(resp, body)) as raw,
        aclosing(_shape(raw, request, keyed=keyed)) as events,
    ):
        async for event in events:
            yield event
