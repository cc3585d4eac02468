"""The three real plugins (Copilot, Pollinations, openai_compat as Groq) behind their
emulators, for the tests and scripts that drive the page or the API as a user sees it.

``emulated_plugins()`` starts the plugins' own emulators (``plugins/*/tests/emulator.py``)
on 127.0.0.1 in a background thread, points the plugins' base URLs at them through the
environment (restored afterwards) and yields the plugin modules and the config that
turns the Groq upstream on. Nothing leaves the host.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def emulator_module(plugin: str) -> Any:
    """A plugin's emulator module, under the name the plugin's own conftest gives it."""
    name = f"g4f_server_{plugin}_tests_emulator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PLUGINS / plugin / "tests/emulator.py")
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@dataclass
class Emulated:
    plugins: list[Any]
    config: dict[str, Any]  # AppConfig fields: the Groq upstream
    pollinations: Any = None
    copilot: Any = None
    groq: Any = None
    env: dict[str, str] = field(default_factory=dict)


@contextmanager
def emulated_plugins() -> Iterator[Emulated]:
    import g4f_server_copilot
    import g4f_server_openai_compat
    import g4f_server_pollinations
    from g4f_server_pollinations.config import settings

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="emulators", daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    polli = emulator_module("pollinations").Emulator()
    copilot = emulator_module("copilot").CopilotEmulator()
    groq_module = emulator_module("openai_compat")
    groq = groq_module.Emulator()
    polli_base = run(serve(polli.app))
    copilot.base = run(serve(copilot.app()))
    groq_base = run(serve(groq.app)) + "/v1"
    env = {
        "POLLINATIONS_TEXT_URL": f"{polli_base}/legacy-text",
        "POLLINATIONS_IMAGE_URL": f"{polli_base}/legacy-image",
        "POLLINATIONS_GEN_URL": f"{polli_base}/gen",
        "POLLINATIONS_ANON_TEXT_INTERVAL": "0",
        "POLLINATIONS_ANON_IMAGE_INTERVAL": "0",
        "COPILOT_URL": copilot.base,
        "COPILOT_START_TIMEOUT": "3",
        "GROQ_BASE_URL": groq_base,
        "GROQ_API_KEY": groq_module.KEY,
    }
    saved = {name: os.environ.get(name) for name in (*env, "POLLINATIONS_API_KEY", "COPILOT_TOKEN")}
    os.environ.update(env)
    os.environ.pop("POLLINATIONS_API_KEY", None)
    os.environ.pop("COPILOT_TOKEN", None)
    settings.cache_clear()
    try:
        yield Emulated(
            plugins=[g4f_server_copilot, g4f_server_pollinations, g4f_server_openai_compat],
            config={"upstreams": ["groq"]},
            pollinations=polli,
            copilot=copilot,
            groq=groq,
            env=env,
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        settings.cache_clear()
        for runner in runners:
            run(runner.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
