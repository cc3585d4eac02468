"""One chat completion against an OpenAI-compatible upstream, streamed upstream when the
client streams.

A client that does not stream gets its answer in one piece anyway, so the upstream is
asked for one JSON completion too: reading it costs a fraction of reading and joining ~20
server-sent events (the openai_compat gateway kept ~70% of the Pollinations plugin's
req/s on plain chat while it always streamed upstream; docs/performance.md, issue 26).
The request goes out as the client sent it (tools, tool_choice, response_format, stop,
temperature, unknown extra fields...) minus the gateway's own fields and the fields the
preset says its upstream refuses, with the renames it needs. The answer is read as
server-sent events and turned into ``g4f_server.events``, one list per network read.
A stream that ends without ``[DONE]`` and without a finish reason was cut, and an
``{"error": ...}`` object inside the stream is the upstream's failure: both raise.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from g4f_server import events as ev
from g4f_server.errors import G4FError, ProviderError
from g4f_server.provider import ProviderContext
from g4f_server.upstream import SSELines
from g4f_server_openai_compat import failures
from g4f_server_openai_compat.models import auth_headers
from g4f_server_openai_compat.upstreams import Upstream

if TYPE_CHECKING:
    from g4f_server.requests import ChatRequest

# Ours, never the upstream's; messages/model/stream are set below.
GATEWAY_FIELDS = frozenset(
    {"provider", "api_key", "conversation_id", "proxy", "messages", "model", "stream"}
)
_ERROR_BODY_LIMIT = 64 * 1024
_FINISH: dict[str, ev.FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "end_turn": "stop",
    "eos": "stop",
}


@functools.lru_cache(maxsize=16)
def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    # No total limit: a long answer is fine while bytes keep coming; the kernel bounds
    # the wait for each event itself.
    return aiohttp.ClientTimeout(total=None, sock_connect=min(30.0, seconds), sock_read=seconds)


def request_body(up: Upstream, request: ChatRequest) -> dict[str, Any]:
    preset = up.preset
    body: dict[str, Any] = {"model": request.model}
    messages = request.message_dicts()
    if preset.refused_message_fields:
        drop = preset.refused_message_fields
        messages = [{k: v for k, v in m.items() if k not in drop} for m in messages]
    body["messages"] = messages
    fields = request.model_dump(mode="json", exclude_none=True, exclude=GATEWAY_FIELDS)
    fields.pop("stream_options", None)  # ours to set: the usage chunk of our own stream
    for name, value in fields.items():
        if name not in preset.refused:
            body[name] = value
    for old, new in preset.renamed:
        if old in body:
            value = body.pop(old)
            body.setdefault(new, value)
    body["stream"] = request.stream
    if request.stream and preset.stream_usage and "stream_options" not in preset.refused:
        body["stream_options"] = {"include_usage": True}
    return body


async def chat(up: Upstream, request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[Any]:
    key = ctx.api_key or up.api_key  # the client's own key wins over the configured one
    failures.check_memory(ctx.state, up, key)
    headers = auth_headers(up, key)
    headers["Accept"] = "text/event-stream" if request.stream else "application/json"
    try:
        resp = await ctx.http.post(
            f"{up.base_url}/chat/completions",
            data=orjson.dumps(request_body(up, request)),
            headers={**headers, "Content-Type": "application/json"},
            proxy=ctx.proxy,
            timeout=client_timeout(ctx.timeout),
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise failures.for_exception(up, exc, "chat") from exc
    complete = False
    try:
        if resp.status >= 300:
            body = await _error_body(up, resp)
            ctx.log.info("openai_compat_upstream_error", status=resp.status)
            raise failures.for_status(ctx.state, up, key, resp.status, body, resp.headers)
        reader = StreamReader(up)
        kind = resp.content_type
        if kind == "application/json" or (not request.stream and kind != "text/event-stream"):
            # One completion: asked for, or an upstream that ignored "stream" (one that
            # streams although asked not to is read as a stream below).
            yield reader.whole(await _completion(up, resp))
            complete = True
            return
        lines = SSELines()
        try:
            async for piece in resp.content.iter_any():
                if found := lines.feed(piece):
                    if batch := reader.read(found):
                        yield batch
                    if reader.error is not None:
                        raise reader.error
                if lines.done:
                    break
            if (rest := lines.close()) and (batch := reader.read(rest)):
                yield batch
            if reader.error is not None:
                raise reader.error
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise failures.for_exception(up, exc, "chat stream") from exc
        if not lines.done and reader.finish is None:
            raise ProviderError(
                f"{up.provider}'s answer was cut: the stream ended without [DONE] and "
                "without a finish reason",
                code="upstream_stream_cut",
            )
        complete = True
        yield reader.end()
    finally:
        if complete:
            resp.release()
        else:  # the client hung up or we failed: close the upstream request too
            resp.close()


async def _completion(up: Upstream, resp: aiohttp.ClientResponse) -> Any:
    """A whole JSON completion; one that does not parse was cut on the way."""
    try:
        raw = await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise failures.for_exception(up, exc, "chat") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderError(
            f"{up.provider}'s answer was cut: its JSON completion does not parse",
            code="upstream_stream_cut",
        ) from None


async def _error_body(up: Upstream, resp: aiohttp.ClientResponse) -> bytes:
    try:
        return await resp.content.read(_ERROR_BODY_LIMIT)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise failures.for_exception(up, exc, "chat error body") from exc


class StreamReader:
    """Chat completion chunks -> events. Holds the finish reason until the stream ends:
    the usage chunk comes after it, and the kernel wants ``Finish`` last."""

    __slots__ = ("error", "finish", "model_named", "up")

    def __init__(self, up: Upstream) -> None:
        self.up = up
        self.finish: ev.FinishReason | None = None
        self.model_named = False
        # An error the stream reported: raised after the events that came before it in
        # the same read have been yielded (they are part of the answer the client saw).
        self.error: G4FError | None = None

    def read(self, payloads: list[bytes]) -> list[ev.ChatEvent]:
        out: list[ev.ChatEvent] = []
        for payload in payloads:
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue  # a keep-alive or a vendor's non-JSON line: not an answer
            if isinstance(chunk, dict):
                try:
                    self._chunk(chunk, out)
                except ProviderError as exc:
                    self.error = exc
                    break
        return out

    def _chunk(self, chunk: dict[str, Any], out: list[ev.ChatEvent]) -> None:
        error = chunk.get("error")
        if error:  # OpenRouter and others report a failure mid-stream this way
            raise self._stream_error(error)
        if not self.model_named and isinstance(chunk.get("model"), str) and chunk["model"]:
            out.append(ev.ModelUsed(chunk["model"]))
            self.model_named = True
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta is None:  # a whole message: its tool calls carry no "index"
                delta = choice.get("message") or {}
                for position, call in enumerate(delta.get("tool_calls") or ()):
                    if isinstance(call, dict):
                        call.setdefault("index", position)
            self._delta(delta or {}, out)
            reason = choice.get("finish_reason")
            if reason == "error":  # OpenRouter: the model failed after starting
                raise self._stream_error(choice.get("error") or "finish_reason: error")
            if reason:
                self.finish = _FINISH.get(reason, "stop")
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage.get("prompt_tokens") is not None:
            out.append(
                ev.Usage(
                    int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0),
                    usage.get("total_tokens"),
                )
            )

    @staticmethod
    def _delta(delta: dict[str, Any], out: list[ev.ChatEvent]) -> None:
        # DeepSeek, vLLM and llama.cpp say reasoning_content; OpenRouter, Groq and
        # Ollama say reasoning.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(ev.ReasoningDelta(reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            out.append(ev.TextDelta(content))
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if isinstance(arguments, dict | list):  # a few servers send parsed JSON
                arguments = orjson.dumps(arguments).decode()
            out.append(
                ev.ToolCallDelta(
                    index=int(call.get("index") or 0),
                    id=call.get("id") or None,
                    name=function.get("name") or None,
                    arguments=arguments or "",
                )
            )

    def _stream_error(self, error: Any) -> ProviderError:
        message = error.get("message") if isinstance(error, dict) else str(error)
        return ProviderError(
            f"{self.up.provider} failed while answering: {message or error}",
            code="upstream_stream_error",
        )

    def whole(self, completion: Any) -> list[ev.ChatEvent]:
        """A non-streamed completion object as the same events."""
        out: list[ev.ChatEvent] = []
        if isinstance(completion, dict):
            self._chunk(completion, out)  # an error object raises here
        out.append(ev.Finish(self.finish or "stop"))
        return out

    def end(self) -> list[ev.ChatEvent]:
        return [ev.Finish(self.finish or "stop")]
