"""GET /v1/status: what the status page (/status) shows, behind the key like the API:
every provider's health, the latest errors of all of them and the request rates."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from g4f_server import __version__
from g4f_server.appkeys import CONFIG
from g4f_server.providers.registry import REGISTRY
from g4f_server.web.jsonio import json_response
from g4f_server.web.routes.health import chat_ready

RECENT = 50  # errors listed, newest first


async def status_data(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    providers: list[dict[str, Any]] = []
    recent: list[dict[str, Any]] = []
    for entry in registry.ordered:
        vitals = entry.vitals
        providers.append(
            {
                "provider": entry.name,
                "status": entry.status,
                "working": entry.working,
                "models": sum("chat" in m.capabilities for m in entry.models),
                "cooldown": entry.health.state(),
                **vitals.report(),
            }
        )
        recent += [
            {"at": e.at, "provider": entry.name, "code": e.code, "status": e.status,
             "probe": e.probe}
            for e in vitals.errors
        ]  # fmt: skip
    recent.sort(key=lambda e: e["at"], reverse=True)
    for error in recent:
        error["at"] = int(error["at"])
    providers += [
        {"provider": f.name, "status": "down", "working": False, "models": 0, "error": f.error}
        for f in registry.failed
    ]
    ready = chat_ready(registry)
    return json_response(
        {
            "object": "status",
            "version": __version__,
            "ready": bool(ready),
            "probe_interval": request.app[CONFIG].probe_interval,
            "requests_per_minute": round(
                sum(e.vitals.requests_per_minute() for e in registry.ordered), 1
            ),
            "providers": providers,
            "recent_errors": recent[:RECENT],
        }
    )
