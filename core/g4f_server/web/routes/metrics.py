"""GET /metrics (the collectors live in g4f_server.metrics)."""

from __future__ import annotations

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus metrics (with `--metrics`; behind the key unless `--metrics-public`)."""
    if not request.app[CONFIG].metrics:
        raise errors.NotFoundError("Metrics are off on this server (--metrics turns them on)")
    from g4f_server.controls.metrics import METRICS

    return request.app[METRICS].render()
