"""Schemathesis against our own /openapi.json (issue 17 item 7): generated requests for every
documented operation, bounded in examples and time; any 5xx other than a provider's fails.

Runs against a real server on 127.0.0.1 (a thread with its own event loop), with the test
providers, so new routes are fuzzed as soon as they are documented.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from tests.fake_providers import Scripted
from tests.media_providers import Painter, Speaker
from tests.server_process import free_port

# Statuses a provider may answer for a well-formed request (failed upstream, no provider
# for the model): the gateway's own mistakes are the other 5xx.
PROVIDER_STATUSES = {502, 503, 504}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: Any) -> Iterator[str]:
    port = free_port()
    loop = asyncio.new_event_loop()
    config = AppConfig(data_dir=tmp_path_factory.mktemp("fuzz"), access_log=False)
    app = create_app(config, plugins=[Scripted(), Painter(), Speaker()], load_entrypoints=False)
    runner = web.AppRunner(app, handler_cancellation=True)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def test_no_5xx_for_any_generated_request(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        def check(case: Any) -> None:
            response = case.call(base_url=base_url, timeout=10)
            if response.status_code >= 500 and response.status_code not in PROVIDER_STATUSES:
                failures.append(
                    f"{case.method} {case.path}: {response.status_code} {response.text[:200]}"
                )

        bounded = settings(
            max_examples=15,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        bounded(given(case=operation.as_strategy())(check))()
    assert not failures, failures
