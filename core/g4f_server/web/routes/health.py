"""GET /health, /health/live and /health/ready: for load balancers and orchestrators;
open even when an API key is set. /health/live is answered even by a connection refused
over the cap (``web/connections.py``)."""

from __future__ import annotations

from aiohttp import web

from g4f_server import __version__
from g4f_server.providers.registry import REGISTRY, Registry
from g4f_server.web.jsonio import json_response

# What "can answer a chat" means for readiness: a provider that is merely degraded (its
# last call failed, or it serves a built-in model list) still counts. Counting only
# ``working`` would let one failed request take a single-provider server out of its load
# balancer, and without traffic (or probes) nothing would ever bring it back.
_ANSWERS = frozenset({"working", "degraded"})


async def health(request: web.Request) -> web.Response:
    """Report that the server is up and how many providers work."""
    registry = request.app[REGISTRY]
    working = sum(1 for e in registry.ordered if e.working)
    return json_response({"status": "ok", "version": __version__, "providers_working": working})


async def live(request: web.Request) -> web.Response:
    """The process is up and its event loop answers: nothing else is looked at."""
    return json_response({"status": "ok"})


def chat_ready(registry: Registry) -> list[str]:
    """The chat providers that can answer now (``working`` or ``degraded``)."""
    return [e.name for e in registry.ordered if "chat" in e.capabilities and e.status in _ANSWERS]


async def ready(request: web.Request) -> web.Response:
    """200 when at least one chat provider can answer, else 503."""
    names = chat_ready(request.app[REGISTRY])
    return json_response(
        {"status": "ready" if names else "not_ready", "chat_providers": names},
        status=200 if names else 503,
    )
