"""GET /v1/models, /v1/models/{model} and /api/{provider}/models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.capabilities import HOOK_CAPABILITY
from g4f_server.provider import ModelInfo
from g4f_server.providers.registry import REGISTRY, ProviderEntry, Registry
from g4f_server.providers.router import table_routes
from g4f_server.web.jsonio import json_response


def model_entry(model: ModelInfo, entry: ProviderEntry) -> dict[str, Any]:
    caps = model.capabilities
    return {
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


def public_entry(registry: Registry, name: str) -> dict[str, Any] | None:
    """A public name of the routing table: the providers it reaches and what they can
    do together; None when no installed provider can serve it."""
    targets = registry.table.lookup(name) if registry.table is not None else None
    if targets is None:
        return None
    providers: list[str] = []
    caps: set[str] = set()
    owner = ""
    for capability in HOOK_CAPABILITY.values():
        public_only = registry.table is not None and registry.table.built_in
        for route in table_routes(registry, targets, name, capability, public_only=public_only):
            info = route.entry.model(route.model)
            caps |= info.capabilities if info else {capability}
            owner = owner or (info.owned_by if info else "") or route.entry.info.label
            if route.entry.name not in providers:
                providers.append(route.entry.name)
    if not providers:
        return None
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": owner or providers[0],
        "providers": providers,
        "aliases": [],
        "capabilities": sorted(caps),
        "image": "image" in caps,
        "vision": "vision" in caps,
        "provider": False,
        "public": True,  # a name of the routing table (docs/configuration.md)
        "targets": [str(t) for t in targets],
    }


def model_list(registry: Registry) -> list[dict[str, Any]]:
    """Every model (merged across providers), the public names of the routing table,
    then the providers themselves (usable as a model name: their default model)."""
    data: dict[str, dict[str, Any]] = {}
    for entry in registry.ordered:
        for model in entry.models:
            item = data.get(model.id.lower())
            if item is None:
                data[model.id.lower()] = model_entry(model, entry)
            elif entry.name not in item["providers"]:
                item["providers"].append(entry.name)
    for name in registry.table.names if registry.table is not None else ():
        if name.lower() not in data and (item := public_entry(registry, name)) is not None:
            data[name.lower()] = item
    for entry in registry.ordered:
        if entry.name.lower() not in data:
            data[entry.name.lower()] = {
                "id": entry.name,
                "object": "model",
                "created": 0,
                "owned_by": entry.info.label or entry.name,
                "image": "image" in entry.capabilities,
                "vision": any("vision" in m.capabilities for m in entry.models),
                "provider": True,
            }
    return list(data.values())


def describe_model(registry: Registry, name: str) -> dict[str, Any]:
    """One model, by id, public name or alias; 404 when no provider has it. The id
    echoes the name asked for (as OpenAI does), so a client that checks it finds its own
    name."""
    serving = registry.serving(name)
    listed = any(model_id.lower() == name.lower() for _, model_id in serving)
    public = None if listed else public_entry(registry, name)
    if public is not None:
        return public
    if serving:
        entry, model_id = serving[0]
        model = entry.model(model_id)
        assert model is not None
        item = model_entry(model, entry)
        item["providers"] = [e.name for e, _ in serving]
        item["id"] = name
        if model.id != name:
            item["model"] = model.id  # what the name stands for
        return item
    entry = registry.get(name)
    if entry is not None:
        return {
            "id": entry.name,
            "object": "model",
            "created": 0,
            "owned_by": entry.info.label or entry.name,
            "provider": True,
        }
    raise errors.ModelNotFoundError(f"The model '{name}' does not exist", param="model")


async def list_models(request: web.Request) -> web.Response:
    """List every model (merged across providers), the public names of the routing
    table, then the providers themselves."""
    return json_response({"object": "list", "data": model_list(request.app[REGISTRY])})


async def get_model(request: web.Request) -> web.Response:
    """Describe one model, by id, public name or alias."""
    return json_response(describe_model(request.app[REGISTRY], request.match_info["model"]))


async def provider_models(request: web.Request) -> web.Response:
    """List one provider's models with their capabilities and provider metadata."""
    entry = request.app[REGISTRY].provider(request.match_info["provider"])
    data = []
    for model in entry.models:
        item = {**dict(model.extra), **model_entry(model, entry)}
        del item["providers"], item["provider"]
        data.append(item)
    return json_response({"object": "list", "data": data})
