"""Kernel test fixtures. The g4f_server.testing pytest plugin adds provider_context,
start_gateway and --g4f-live."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient

from g4f_server.app import create_app
from g4f_server.config import AppConfig

# The session's logging, set before any app is built: structlog's defaults, loggers never
# cached. create_app sets logging up only when nothing has (gunicorn's workers), so it
# leaves this alone, and the tests' own set-ups (capture_logs, tests/web/test_logs.py)
# stay swappable: a logger cached under an earlier test's set-up would ignore them.
structlog.configure(cache_logger_on_first_use=False)


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Any) -> Any:
    """``await make_client(*plugins, **config)``: an in-process client of a fresh app with
    only these plugins (installed entry points are not loaded)."""

    async def make(*plugins: object, **config: Any) -> TestClient:
        config.setdefault("data_dir", tmp_path)
        app = create_app(AppConfig(**config), plugins=list(plugins), load_entrypoints=False)
        return await aiohttp_client(app)

    return make


@pytest.fixture
def redis_server(tmp_path: Any) -> Any:
    """A real redis-server on a free loopback port (tests/redis_server.py)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
