"""A real headless Chromium against a running gateway, for the chat page's tests.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven with playwright's
API; playwright's own browser downloads are never used. The gateway runs in a thread
with its own event loop on 127.0.0.1, with test providers in the same process so the
tests can script them and read what they received.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp import web

from g4f_server.app import create_app
from g4f_server.config import AppConfig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Quiet and offline: no first-run UI, no background calls to Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class LiveGateway:
    """The gateway serving on a free loopback port from a background thread."""

    def __init__(self, plugins: list[object], **config: Any) -> None:
        self.plugins = plugins
        self.config = config
        self.url = ""
        self.app: web.Application | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="live-gateway", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> LiveGateway:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the gateway did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner: web.AppRunner | None = None

        async def start() -> web.AppRunner:
            app = create_app(AppConfig(**self.config), plugins=self.plugins, load_entrypoints=False)
            self.app = app
            # As run_api: a client that hangs up cancels the handler (and the upstream call).
            started = web.AppRunner(app, handler_cancellation=True, access_log=None)
            await started.setup()
            site = web.TCPSite(started, "127.0.0.1", 0)
            await site.start()
            port = started.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            return started

        try:
            runner = self._loop.run_until_complete(start())
        except BaseException as exc:
            self._error = exc
        self._ready.set()
        if runner is None:
            return
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()


def require_chromium() -> None:
    """Skip on a developer machine without Chromium; in CI a missing browser is a failure."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium, shared by the tests of a module; each test opens its own
    context (fresh cookies and storage). Playwright starts it with a fresh temporary
    profile (--user-data-dir) and removes it afterwards."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
