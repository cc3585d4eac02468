"""The upstream's models: fetched from its ``/models``, described with what the listing
says (OpenRouter's ``supported_parameters`` and ``pricing``, GitHub's catalog
``capabilities``, Together's ``type``) and, where it says nothing, with the preset's
facts. When the list cannot be fetched the preset's fallback list is served instead,
marked as such (``FallbackModels``), and the last good list is kept in ``ctx.state``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import orjson

from g4f_server.errors import ProviderAuthError
from g4f_server.provider import FallbackModels, ModelInfo, ProviderContext
from g4f_server_openai_compat import failures
from g4f_server_openai_compat.presets import BASE_CHAT
from g4f_server_openai_compat.upstreams import Upstream

LIST_TIMEOUT = aiohttp.ClientTimeout(total=4.0)
_MAX_LIST = 8 * 1024 * 1024  # OpenRouter's list is ~1 MB; anything far bigger is wrong
_EMBED = frozenset({"embeddings"})
_EMBED_TOKENS = frozenset({"embeddings", "token_input"})


def auth_headers(up: Upstream, key: str | None) -> dict[str, str]:
    headers = dict(up.headers)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


async def list_models(up: Upstream, ctx: ProviderContext) -> list[ModelInfo]:
    url = up.models_url
    if url is None:  # no list to fetch: the preset's list is the documented one
        return describe(up, ({"id": m} for m in (up.allowed or up.preset.fallback_models)))
    try:
        entries = await _fetch(up, ctx, url)
    except ProviderAuthError:
        raise  # a refused key is not "degraded": the provider cannot work at all
    except Exception as exc:
        ctx.log.warning("openai_compat_models_unreachable", url=url, error=repr(exc))
        last = ctx.state.get("models")
        if last:
            return FallbackModels(last)
        ids = list(up.allowed) if up.allowed else list(up.preset.fallback_models)
        return FallbackModels(describe(up, ({"id": m} for m in ids)))
    models = describe(up, entries)
    ctx.state["models"] = models
    return models


async def _fetch(up: Upstream, ctx: ProviderContext, url: str) -> list[dict[str, Any]]:
    async with ctx.http.get(
        url, headers=auth_headers(up, up.api_key), proxy=ctx.proxy, timeout=LIST_TIMEOUT
    ) as resp:
        body = await resp.content.read(_MAX_LIST)
        if resp.status >= 300:
            raise failures.for_status(ctx.state, up, up.api_key, resp.status, body, resp.headers)
    data: Any = orjson.loads(body)
    # OpenAI: {"object": "list", "data": [...]}; GitHub's catalog and Together: a list.
    entries = data.get("data", data.get("models")) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"unexpected model list shape from {url}")
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]


def describe(up: Upstream, entries: Iterable[Mapping[str, Any]]) -> list[ModelInfo]:
    """ModelInfo per listed model, filtered and aliased by the table's ``models``."""
    out: list[ModelInfo] = []
    seen: set[str] = set()
    for entry in entries:
        model_id = str(entry["id"]).removeprefix(up.preset.model_prefix)
        if model_id in seen or (up.allowed is not None and model_id not in up.allowed):
            continue
        seen.add(model_id)
        embedding = is_embedding(up, model_id, entry)
        extra: dict[str, Any] = {"upstream": up.name}
        if is_free(up, model_id, entry):
            extra["free"] = True
        if embedding:
            extra["embedding"] = True
        out.append(
            ModelInfo(
                model_id,
                embedding_capabilities(up) if embedding else capabilities(up, model_id, entry),
                aliases=(up.allowed or {}).get(model_id, ()),
                owned_by=str(entry.get("owned_by") or entry.get("publisher") or up.provider),
                description=str(entry.get("description") or entry.get("summary") or "")[:300],
                extra=extra,
            )
        )
    return out


def embedding_capabilities(up: Upstream) -> frozenset[str]:
    """An embedding model embeds where the upstream has /embeddings (and never chats);
    elsewhere it is listed but offered for nothing."""
    if not up.preset.embeddings:
        return frozenset()
    return _EMBED_TOKENS if up.preset.embedding_tokens else _EMBED


def is_embedding(up: Upstream, model_id: str, entry: Mapping[str, Any]) -> bool:
    kind = entry.get("type")  # Together: "chat", "embedding", "image", ...
    if isinstance(kind, str):
        return kind == "embedding"
    lowered = model_id.lower()
    return any(part in lowered for part in up.preset.embedding_ids)


def capabilities(up: Upstream, model_id: str, entry: Mapping[str, Any]) -> frozenset[str]:
    lowered = model_id.lower()
    caps = set(BASE_CHAT) | up.preset.capabilities
    if any(part in lowered for part in up.preset.vision_ids):
        caps.add("vision")
    if any(part in lowered for part in up.preset.reasoning_ids):
        caps.add("reasoning")
    # What the listing itself says wins over the preset's guess.
    params = entry.get("supported_parameters")  # OpenRouter
    if isinstance(params, list):
        _set(caps, "tools", "tools" in params)
        _set(caps, "json_schema", bool({"response_format", "structured_outputs"} & set(params)))
        _set(caps, "reasoning", "reasoning" in params or "include_reasoning" in params)
    listed_caps = entry.get("capabilities")  # GitHub's catalog
    if isinstance(listed_caps, list):
        _set(caps, "tools", "tool-calling" in listed_caps)
    modalities = (entry.get("architecture") or {}).get("input_modalities") or entry.get(
        "supported_input_modalities"
    )
    if isinstance(modalities, list):
        _set(caps, "vision", "image" in modalities)
    return frozenset(caps)


def _set(caps: set[str], name: str, present: bool) -> None:
    if present:
        caps.add(name)
    else:
        caps.discard(name)


def is_free(up: Upstream, model_id: str, entry: Mapping[str, Any]) -> bool:
    preset = up.preset
    if preset.free_all or model_id in preset.free_ids:
        return True
    if preset.free_suffix and model_id.endswith(preset.free_suffix):
        return True
    pricing = entry.get("pricing")  # OpenRouter, Together: a zero price is a free model
    if isinstance(pricing, Mapping):
        prices = [pricing.get(k) for k in ("prompt", "completion", "input", "output")]
        prices = [p for p in prices if p is not None]
        try:
            return bool(prices) and all(float(p) == 0 for p in prices)
        except (TypeError, ValueError):
            return False
    return False
