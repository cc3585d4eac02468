"""One chat completion against an OpenAI-compatible upstream, streamed upstream when the
client streams.

A client that does not stream gets its answer in one piece anyway, so the upstream is
asked for one JSON completion too: reading it costs a fraction of reading and joining ~20
server-sent events (the openai_compat gateway kept ~70% of the Pollinations plugin's
req/s on plain chat while it always streamed upstream; docs/performance.md, issue 26).
The request goes out as the client sent it (tools, tool_choice, response_format, stop,
temperature, unknown extra fields...) minus the gateway's own fields and the fields the
preset says its upstream refuses, with the renames it needs. The answer is read as
server-sent events and turned into ``g4f_server.events``, one list per network read
(``answer.StreamReader``).
A stream that ends without ``[DONE]`` and without a finish reason was cut, and an
``{"error": ...}`` object inside the stream is the upstream's failure: both raise.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from g4f_server.errors import ProviderError
from g4f_server.provider import ProviderContext
from g4f_server_openai_compat import failures
from g4f_server_openai_compat.answer import StreamReader
from g4f_server_openai_compat.models import auth_headers
from g4f_server_openai_compat.upstreams import Upstream

if TYPE_CHECKING:
    from g4f_server.requests import ChatRequest

# Ours, never the upstream's; messages/model/stream are set below. (The fields with a
# default other than None are among these: request_body relies on it.)
GATEWAY_FIELDS = frozenset(
    {"provider", "api_key", "conversation_id", "proxy", "messages", "model", "stream"}
)
_ERROR_BODY_LIMIT = 64 * 1024


@functools.lru_cache(maxsize=16)
def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """No total limit: a long answer is fine while bytes keep coming. No socket read
    timer either: the kernel bounds every wait of a chat call itself (``G4F_TIMEOUT`` for
    the first event, counted from before the request, so it always fires first;
    ``G4F_STREAM_TIMEOUT`` for each gap). aiohttp would arm one when the body is sent and
    re-arm it on every network read (a timer handle and ~5 k instructions each)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=min(30.0, seconds))


def _route(
    up: Upstream, key: str | None, stream: bool, state: dict[str, Any]
) -> tuple[URL, CIMultiDictProxy[str]]:
    """The chat URL, parsed (a string is parsed again on every call), and the request
    headers, read-only (aiohttp copies them into each request's own). With the configured
    key (the usual) they are the same on every call: made once per Accept, kept in the
    upstream's ctx.state. A client's own key is not kept past its request (failures.py
    remembers keys only by fingerprint), so its headers are made for the call."""
    if key is not up.api_key:
        return _made(up, key, stream)
    routes: dict[bool, tuple[URL, CIMultiDictProxy[str]]] = state.setdefault("chat_routes", {})
    if (route := routes.get(stream)) is None:
        route = routes[stream] = _made(up, key, stream)
    return route


def _made(up: Upstream, key: str | None, stream: bool) -> tuple[URL, CIMultiDictProxy[str]]:
    headers = auth_headers(up, key)
    headers["Accept"] = "text/event-stream" if stream else "application/json"
    headers["Content-Type"] = "application/json"
    return URL(f"{up.base_url}/chat/completions"), CIMultiDictProxy(CIMultiDict(headers))


def request_body(up: Upstream, request: ChatRequest) -> dict[str, Any]:
    preset = up.preset
    body: dict[str, Any] = {"model": request.model}
    messages = request.message_dicts()
    if preset.refused_message_fields:
        drop = preset.refused_message_fields
        messages = [{k: v for k, v in m.items() if k not in drop} for m in messages]
    body["messages"] = messages
    # Only what the client set (extra fields included): every other field is None, or
    # ours. Most requests set nothing more, and skip the dump (~40,000 instructions).
    if set_fields := request.model_fields_set - GATEWAY_FIELDS:
        fields = request.model_dump(mode="json", exclude_none=True, include=set_fields)
        fields.pop("stream_options", None)  # ours to set: the usage chunk of our stream
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
    url, headers = _route(up, key, request.stream, ctx.state)
    try:
        resp = await ctx.http.post(
            url,
            data=orjson.dumps(request_body(up, request)),
            headers=headers,
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
            content = resp.content
            if content.is_eof():  # the usual: it came with its headers (no coroutine)
                yield reader.whole(_parsed(up, content.read_nowait()))
            else:
                yield reader.whole(await _completion(up, resp))
            complete = True
            return
        feed, readany = reader.feed, resp.content.readany
        # The read that ended the stream at [DONE] goes out with the Finish: one batch
        # (one write to the client), not two.
        last: list[Any] = []
        try:
            # readany() itself, not iter_any(): its __anext__ is one more coroutine per read.
            while piece := await readany():
                batch = feed(piece)
                if reader.done and reader.error is None:
                    last = batch
                    break
                if batch:
                    yield batch
                if reader.error is not None:
                    raise reader.error
                if reader.done:
                    break
            if batch := reader.close():
                yield batch
            if reader.error is not None:
                raise reader.error
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise failures.for_exception(up, exc, "chat stream") from exc
        if not reader.done and reader.finish is None:
            raise ProviderError(
                f"{up.provider}'s answer was cut: the stream ended without [DONE] and "
                "without a finish reason",
                code="upstream_stream_cut",
            )
        complete = True
        last += reader.end()
        yield last
    finally:
        if complete:
            resp.release()
        else:  # the client hung up or we failed: close the upstream request too
            resp.close()


async def _completion(up: Upstream, resp: aiohttp.ClientResponse) -> Any:
    """A whole JSON completion still arriving after its headers."""
    try:
        raw = await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise failures.for_exception(up, exc, "chat") from exc
    return _parsed(up, raw)


def _parsed(up: Upstream, raw: bytes) -> Any:
    """A whole JSON completion; one that does not parse was cut on the way."""
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
