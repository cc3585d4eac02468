"""GET /v1/models, /v1/models/{model} and /api/{provider}/models.

``/v1/models`` is what clients with a model picker (Open WebUI, LibreChat...) fill their
lists from, so every id in it is a name a request can send as it is: no glob patterns,
no voices (a voice is listed in its speech model's ``voices``), and each id with its own
capabilities.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.provider import ModelInfo
from g4f_server.providers.catalog import PublicName, public_name
from g4f_server.providers.model_table import is_glob
from g4f_server.providers.registry import REGISTRY, ProviderEntry, Registry
from g4f_server.providers.router import provider_named
from g4f_server.web.jsonio import json_response

# ``extra`` marks of a model that /v1/models passes on (as true booleans only): clients
# read them, e.g. to show which models cost nothing.
PASSED_MARKS = ("free",)


def voices(entry: ProviderEntry, model: ModelInfo) -> list[str]:
    """The voices of a speech model: its own ``extra["voices"]`` and the voice entries
    the provider lists for it (``ModelInfo.voice_of``)."""
    listed = model.extra.get("voices")
    found = [v for v in listed if isinstance(v, str)] if isinstance(listed, list) else []
    found += [m.id for m in entry.models if m.voice_of == model.id]
    return list(dict.fromkeys(found))


def model_entry(model: ModelInfo, entry: ProviderEntry) -> dict[str, Any]:
    caps = model.capabilities
    item: dict[str, Any] = {
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": model.owned_by or entry.info.label or entry.name,
        "providers": [entry.name],
        "aliases": list(model.aliases),
        "capabilities": sorted(caps),
        "image": "image" in caps,
        "vision": "vision" in caps,
        "provider": False,
    }
    item.update({mark: True for mark in PASSED_MARKS if model.extra.get(mark) is True})
    if "speech" in caps and (names := voices(entry, model)):
        item["voices"] = names
    return item


def public_entry(public: PublicName, name: str | None = None) -> dict[str, Any]:
    """A public name of the routing table: its kinds, what it routes to, in order, and
    what those models can do."""
    caps = public.capabilities
    first = public.routes[0][1]
    info = first.entry.model(first.model)
    return {
        "id": name or public.name,
        "object": "model",
        "created": 0,
        "owned_by": (info.owned_by if info else "") or first.entry.info.label or first.entry.name,
        "providers": public.providers,
        "aliases": [],
        "capabilities": sorted(caps),
        "image": "image" in caps,
        "vision": "vision" in caps,
        "provider": False,
        "public": True,  # a name of the routing table (docs/configuration.md)
        "kinds": list(public.kinds),
        "targets": [str(t) for t in public.targets],
        "routes": [
            {"kind": kind, "provider": route.entry.name, "model": route.model}
            for kind, route in public.routes
        ],
    }


def provider_entry(entry: ProviderEntry) -> dict[str, Any]:
    return {
        "id": entry.name,
        "object": "model",
        "created": 0,
        "owned_by": entry.info.label or entry.name,
        "image": "image" in entry.capabilities,
        "vision": any("vision" in m.capabilities for m in entry.models),
        "provider": True,
    }


def _merge(item: dict[str, Any], model: ModelInfo, entry: ProviderEntry) -> None:
    """Another provider serving the same id: the same model, so what it can do adds up."""
    if entry.name not in item["providers"]:
        item["providers"].append(entry.name)
    caps = set(item["capabilities"]) | model.capabilities
    item.update(capabilities=sorted(caps), image="image" in caps, vision="vision" in caps)
    item["aliases"] += [a for a in model.aliases if a not in item["aliases"]]


async def list_models(request: web.Request) -> web.Response:
    """List every model (merged across providers), the public names of the routing
    table, then the providers themselves."""
    return json_response({"object": "list", "data": model_list(request.app[REGISTRY])})


def model_list(registry: Registry) -> list[dict[str, Any]]:
    """Every model (merged across providers), the public names of the routing table,
    then the providers themselves (usable as a model name: their default model)."""
    data: dict[str, dict[str, Any]] = {}
    for entry in registry.ordered:
        for model in entry.models:
            if model.voice_of:
                continue
            item = data.get(model.id.lower())
            if item is None:
                data[model.id.lower()] = model_entry(model, entry)
            else:
                _merge(item, model, entry)
    table = registry.table
    for name in table.names if table is not None else ():
        if is_glob(name) or name.lower() in data:
            continue  # a pattern is not a name a client can pick
        if (public := public_name(registry, name)) is not None:
            data[name.lower()] = public_entry(public)
    for entry in registry.ordered:
        if entry.name.lower() not in data:
            data[entry.name.lower()] = provider_entry(entry)
    return list(data.values())


def _listed(registry: Registry, name: str) -> dict[str, Any] | None:
    """``name`` as a model id, a voice or an alias of the providers' models; None if none."""
    serving = registry.serving(name)
    if not serving:
        return None
    by_id = [(e, m) for e, m in serving if m.lower() == name.lower()]
    entry, model_id = (by_id or serving)[0]
    model = entry.model(model_id)
    assert model is not None
    if model.voice_of and (speech := entry.model(model.voice_of)) is not None:
        item = model_entry(speech, entry)
        item.update(id=name, model=speech.id, voice=model.id)
        return item
    item = model_entry(model, entry)
    for other, other_id in by_id[1:] if by_id else serving[1:]:
        if (info := other.model(other_id)) is not None and info.id == model.id:
            _merge(item, info, other)
    item["id"] = name
    if model.id != name:
        item["model"] = model.id  # what the alias stands for
    return item


async def get_model(request: web.Request) -> web.Response:
    """Describe one model, by id, public name, alias or voice. The id echoes the name asked
    for (as OpenAI does), so a client that checks it finds its own name."""
    return json_response(describe_model(request.app[REGISTRY], request.match_info["model"]))


def describe_model(registry: Registry, name: str) -> dict[str, Any]:
    """One model, by id, public name, alias or voice; 404 when no provider has it."""
    table = registry.table
    exact_public = table is not None and name.lower() in table.exact
    listed_id = any(m.lower() == name.lower() for _, m in registry.serving(name))
    public = public_name(registry, name)
    if public is not None and exact_public and not listed_id:
        return public_entry(public, name)
    item = _listed(registry, name)
    if item is not None:
        if public is not None and not listed_id:
            # An alias the table also matches (gpt-4.1-nano and gpt-4.1*): the router
            # tries the table's routes, this model first among them.
            item["public"] = True
            item["routes"] = public_entry(public)["routes"]
        return item
    if public is not None:
        return public_entry(public, name)
    entry = registry.get(name)
    if entry is not None:
        item = provider_entry(entry)
        del item["image"], item["vision"]
        return item
    raise errors.ModelNotFoundError(f"The model '{name}' does not exist", param="model")


async def provider_models(request: web.Request) -> web.Response:
    """List one provider's models with their capabilities and provider metadata; voices
    are in their speech model's ``voices``, not models of their own."""
    entry = provider_named(request.app[REGISTRY], request.match_info["provider"])
    data = []
    for model in entry.models:
        if model.voice_of:
            continue
        item = {**dict(model.extra), **model_entry(model, entry)}
        del item["providers"], item["provider"]
        data.append(item)
    return json_response({"object": "list", "data": data})
