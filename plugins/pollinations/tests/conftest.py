"""Fixtures: a running emulator with the plugin's base URLs pointed at it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Loaded under a unique name: pytest runs with --import-mode=importlib and other plugins'
# tests may have an "emulator" module of their own.
_NAME = "g4f_server_pollinations_tests_emulator"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("emulator.py"))
    assert _spec and _spec.loader
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])
emu_module = sys.modules[_NAME]


@pytest.fixture(autouse=True)
def fresh_settings() -> Any:
    """The plugin reads its environment once; each test starts (and ends) with a fresh read."""
    from g4f_server_pollinations.config import settings

    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
def emu_mod() -> Any:
    """The emulator module (constants such as NOTICE, TEXT_MODELS, png())."""
    return emu_module


@pytest.fixture
async def emulator(aiohttp_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    emu = emu_module.Emulator()
    server = await aiohttp_server(emu.app, host="127.0.0.1")
    base = str(server.make_url("")).rstrip("/")
    emu.base = emu.url = base  # url: the kit's name for it
    monkeypatch.setenv("POLLINATIONS_TEXT_URL", f"{base}/legacy-text")
    monkeypatch.setenv("POLLINATIONS_IMAGE_URL", f"{base}/legacy-image")
    monkeypatch.setenv("POLLINATIONS_GEN_URL", f"{base}/gen")
    monkeypatch.delenv("POLLINATIONS_API_KEY", raising=False)
    monkeypatch.setenv("POLLINATIONS_MODELS_TIMEOUT", "3")
    # The emulator does not space anonymous calls unless a test asks it to (min_gap).
    monkeypatch.setenv("POLLINATIONS_ANON_TEXT_INTERVAL", "0")
    monkeypatch.setenv("POLLINATIONS_ANON_IMAGE_INTERVAL", "0")
    return emu


@pytest.fixture
async def gateway_url(emulator: Any, start_gateway: Any, tmp_path: Path) -> str:
    """A gateway with only this plugin, talking to the emulator (the kernel's
    ``openai_client`` / ``anthropic_client`` fixtures point at it)."""
    import g4f_server_pollinations

    return await start_gateway(plugins=[g4f_server_pollinations], data_dir=str(tmp_path))


@pytest.fixture
def ctx(provider_context: Callable[..., Any]) -> Callable[..., Any]:
    """``ctx(**fields)``: a ProviderContext whose state persists within the test."""
    return provider_context
