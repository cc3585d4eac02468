"""GET /v1/providers and /v1/providers/{provider}."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.logs import get_logger
from g4f_server.providers.context import make_context
from g4f_server.providers.registry import REGISTRY, FailedProvider, ProviderEntry
from g4f_server.web.jsonio import json_response

log = get_logger("g4f_server.providers")


def _ids(entry: ProviderEntry, capability: str) -> list[str]:
    # Voices (voice_of) are not models: they are listed in their speech model's entry.
    return [m.id for m in entry.models if capability in m.capabilities and not m.voice_of]


def provider_entry(entry: ProviderEntry, *, detail: bool = False) -> dict[str, Any]:
    info = entry.info
    item: dict[str, Any] = {
        "id": info.name,
        "object": "provider",
        "provider": info.name,
        "label": info.label or info.name,
        "aliases": list(info.aliases),
        "url": info.url,
        "models": _ids(entry, "chat"),
        "image_models": _ids(entry, "image"),
        "vision_models": _ids(entry, "vision"),
        "speech_models": _ids(entry, "speech"),
        "transcription_models": _ids(entry, "transcription"),
        "capabilities": sorted(entry.capabilities),
        # working: the last call or probe succeeded (before any: the model list loaded);
        # status: working, degraded, down or needs_auth (providers/health.py).
        "working": entry.working,
        "status": entry.status,
        "error": entry.error,
        **entry.vitals.report(),  # checked_at, last_error, latency_p50_ms, success_rate...
        "auth": info.auth != "none",
        "auth_required": info.auth == "required",
    }
    if detail:
        item.update(
            description=info.description,
            auth_hint=info.auth_hint,
            stream="chat" in entry.capabilities,
            default_model=entry.default_model_for("chat"),
            default_image_model=entry.default_model_for("image"),
            priority=info.priority,
            plugin=entry.plugin_name,
            health=entry.health.report(),  # cooldown state (cooldown.py)
        )
    return item


# A plugin that failed to load was never called: its health fields are all empty.
_NEVER_CHECKED = {
    "checked_at": None,
    "last_success_at": None,
    "last_error": None,
    "last_error_at": None,
    "latency_p50_ms": None,
    "success_rate": None,
    "requests_per_minute": 0.0,
}


def failed_entry(failed: FailedProvider) -> dict[str, Any]:
    return {
        "id": failed.name,
        "object": "provider",
        "provider": failed.name,
        "label": failed.name,
        "url": "",
        "models": [],
        "capabilities": [],
        "working": False,
        "status": "down",
        "error": failed.error,
        **_NEVER_CHECKED,
    }


async def list_providers(request: web.Request) -> web.Response:
    """List installed providers, including plugins that failed to load (working: false)."""
    registry = request.app[REGISTRY]
    data = [provider_entry(e) for e in registry.ordered]
    data += [failed_entry(f) for f in registry.failed]
    return json_response({"object": "list", "data": data})


def auth_status(request: web.Request, entry: ProviderEntry) -> dict[str, Any] | None:
    if "auth_status" not in entry.impls:
        return None
    try:
        return dict(entry.call("auth_status", ctx=make_context(request.app, entry, request)))
    except Exception as exc:  # a status report must not break the listing
        log.warning("auth_status_failed", provider=entry.name, error=repr(exc))
        return {"logged_in": None, "detail": "the provider could not report its login state"}


async def get_provider(request: web.Request) -> web.Response:
    """Describe one provider, with its login state when it reports one."""
    name = request.match_info["provider"]
    registry = request.app[REGISTRY]
    entry = registry.get(name)
    if entry is not None:
        item = provider_entry(entry, detail=True)
        item["auth_status"] = auth_status(request, entry)
        return json_response(item)
    for failed in registry.failed:
        if failed.name.lower() == name.lower():
            return json_response(failed_entry(failed))
    raise errors.ProviderNotFoundError(f"Provider '{name}' not found", param="provider")
