"""GET /health: liveness for load balancers, with the providers that work; GET
/health/live: the process is up, nothing more (answered even by a connection refused over
the cap, ``web/connections.py``). Both open even when an API key is set."""

from __future__ import annotations

from aiohttp import web

from g4f_server import __version__
from g4f_server.providers.registry import REGISTRY
from g4f_server.web.jsonio import json_response


async def health(request: web.Request) -> web.Response:
    """Report that the server is up and how many providers work."""
    registry = request.app[REGISTRY]
    working = sum(1 for e in registry.ordered if e.working)
    return json_response({"status": "ok", "version": __version__, "providers_working": working})


async def live(request: web.Request) -> web.Response:
    """Report that the process is up (a liveness probe: restart it when this fails)."""
    return json_response({"status": "ok"})
