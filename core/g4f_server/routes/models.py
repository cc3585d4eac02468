"""GET /v1/models, /v1/models/{model} and /api/{provider}/models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.jsonio import json_response
from g4f_server.keys import REGISTRY
from g4f_server.provider import ModelInfo
from g4f_server.registry import ProviderEntry


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


async def list_models(request: web.Request) -> web.Response:
    """List every model (merged across providers), then the providers themselves."""
    registry = request.app[REGISTRY]
    data: dict[str, dict[str, Any]] = {}
    for entry in registry.ordered:
        for model in entry.models:
            item = data.get(model.id.lower())
            if item is None:
                data[model.id.lower()] = model_entry(model, entry)
            elif entry.name not in item["providers"]:
                item["providers"].append(entry.name)
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
    return json_response({"object": "list", "data": list(data.values())})


async def get_model(request: web.Request) -> web.Response:
    """Describe one model, by id or alias."""
    name = request.match_info["model"]
    registry = request.app[REGISTRY]
    serving = registry.serving(name)
    if serving:
        entry, model_id = serving[0]
        model = entry.model(model_id)
        assert model is not None
        item = model_entry(model, entry)
        item["providers"] = [e.name for e, _ in serving]
        return json_response(item)
    entry = registry.get(name)
    if entry is not None:
        return json_response(
            {
                "id": entry.name,
                "object": "model",
                "created": 0,
                "owned_by": entry.info.label or entry.name,
                "provider": True,
            }
        )
    raise errors.ModelNotFoundError(f"The model '{name}' does not exist", param="model")


async def provider_models(request: web.Request) -> web.Response:
    """List one provider's models with their capabilities and provider metadata."""
    entry = request.app[REGISTRY].provider(request.match_info["provider"])
    data = []
    for model in entry.models:
        item = {**dict(model.extra), **model_entry(model, entry)}
        del item["providers"], item["provider"]
        data.append(item)
    return json_response({"object": "list", "data": data})
