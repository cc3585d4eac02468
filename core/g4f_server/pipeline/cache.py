"""The response cache (``--cache-ttl SECONDS``; off by default).

Exact match on the normalised request (model, messages, tools, response_format and the
sampling fields), scoped per API key. Only deterministic requests are cached
(``temperature: 0`` or a ``seed``) unless the request sets ``"cache": true``;
``"cache": false`` or ``Cache-Control: no-cache`` skips it, and so does a conversation
(its answer depends on stored history). Only finished, non-empty answers are stored,
never an error. A hit is replayed through the same pipeline as a provider's answer, so it
streams (as chunks) in every protocol; ``X-G4F-Cache`` says ``hit``, ``miss`` or
``bypass``.

Storage sits behind ``storage.interfaces.ResponseCache`` (``get``/``put`` of bytes, each
atomic); the in-memory backend (``storage/memory.py``) is an LRU bounded in bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from g4f_server import events as ev

if TYPE_CHECKING:
    from g4f_server.pipeline.transcript import Transcript
    from g4f_server.requests import ChatRequest
    from g4f_server.storage.interfaces import ResponseCache

HEADER = "X-G4F-Cache"
_CHUNK = 64  # characters per replayed text chunk
_SAMPLING = (
    "temperature",
    "top_p",
    "seed",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "frequency_penalty",
    "presence_penalty",
    "tool_choice",
    "parallel_tool_calls",
)


@dataclass(slots=True, frozen=True)
class CacheSettings:
    backend: ResponseCache
    ttl: float


# The cache's settings; None when it is off (--cache-ttl 0, the default). Always set, so
# a request reads it without a missing-key lookup.
CACHE: web.AppKey[CacheSettings | None] = web.AppKey("response_cache")


def setup_cache(app: web.Application, config: Any) -> None:
    """The response cache on the app's storage backend, when ``--cache-ttl`` is set."""
    from g4f_server.storage.factory import make_cache

    on = config.cache_ttl > 0
    app[CACHE] = CacheSettings(make_cache(app, config), config.cache_ttl) if on else None


def decide(request: web.Request, chat: ChatRequest, scope: str) -> str | None:
    """The cache key of a request, or None when it bypasses the cache."""
    asked = (chat.model_extra or {}).get("cache")
    if asked is False or chat.conversation_id:
        return None
    control = request.headers.get("Cache-Control", "").lower()
    if "no-cache" in control or "no-store" in control:
        return None
    if asked is not True and chat.temperature != 0 and chat.seed is None:
        return None
    fields = chat.model_dump(mode="json", include=set(_SAMPLING), exclude_none=True)
    normal = {
        "scope": scope,
        "provider": request.match_info.get("provider") or chat.provider,
        "model": chat.model,
        "messages": chat.message_dicts(),
        "tools": [t.model_dump(mode="json", exclude_none=True) for t in chat.tools or ()],
        "response_format": chat.response_format.model_dump(mode="json", exclude_none=True)
        if chat.response_format
        else None,
        "emulate": (chat.model_extra or {}).get("emulate"),
        **fields,
    }
    return hashlib.sha256(orjson.dumps(normal, option=orjson.OPT_SORT_KEYS)).hexdigest()


def encode(provider: str, model: str, transcript: Transcript) -> bytes | None:
    """What a hit replays; None for an answer not worth keeping (empty, or only media)."""
    text = "".join(transcript.text)
    tools = transcript.tool_calls()
    if not tools and (not text or text.isspace()):
        return None
    usage = transcript.usage
    return orjson.dumps(
        {
            "provider": provider,
            "model": model,
            "text": text,
            "reasoning": "".join(transcript.reasoning),
            "tools": tools,
            "finish": transcript.finish,
            "stop_sequence": transcript.stop_sequence,
            "usage": [usage.prompt_tokens, usage.completion_tokens] if usage else None,
            "model_used": transcript.model_used,
        }
    )


def decode(data: bytes) -> tuple[str, str, list[ev.ChatEvent]]:
    """(provider, model, the events to replay)."""
    item = orjson.loads(data)
    out: list[ev.ChatEvent] = []
    if item["model_used"]:
        out.append(ev.ModelUsed(item["model_used"]))
    if item["reasoning"]:
        out.append(ev.ReasoningDelta(item["reasoning"]))
    text = item["text"]
    out += [ev.TextDelta(text[i : i + _CHUNK]) for i in range(0, len(text), _CHUNK)]
    for index, call in enumerate(item["tools"]):
        function = call["function"]
        out.append(ev.ToolCallDelta(index, call["id"], function["name"], function["arguments"]))
    if item["usage"]:
        out.append(ev.Usage(*item["usage"]))
    out.append(ev.Finish(item["finish"] or "stop", item.get("stop_sequence")))
    return item["provider"], item["model"], out


@dataclass(slots=True)
class Lookup:
    key: str | None  # where the answer is to be stored (None: bypass)
    state: str  # hit | miss | bypass: the X-G4F-Cache header
    # A hit: (provider, model, the events to replay). ``start_turn`` replays them, or
    # makes it a miss when that provider is gone (uninstalled since). The dispatcher is
    # not imported here: this module is loaded at start-up (setup_cache).
    hit: tuple[str, str, list[ev.ChatEvent]] | None = None


async def lookup(
    request: web.Request, chat: ChatRequest, scope: str, settings: CacheSettings
) -> Lookup:
    key = decide(request, chat, scope)
    if key is None:
        return Lookup(None, "bypass")
    data = await settings.backend.get(key)
    if data is not None:
        return Lookup(key, "hit", decode(data))
    return Lookup(key, "miss")


async def store(request: web.Request, key: str, provider: str, model: str, transcript: Any) -> None:
    data = encode(provider, model, transcript)
    if data is not None:
        settings = request.app[CACHE]
        if settings is not None:
            await settings.backend.put(key, data, settings.ttl)
