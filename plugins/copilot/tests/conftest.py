"""Fixtures: the Copilot emulator on 127.0.0.1, with the plugin pointed at it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# Loaded by path under a unique name: pytest runs in importlib mode, and the Pollinations
# plugin's tests may have an emulator module of their own.
_NAME = "g4f_server_copilot_tests_emulator"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("emulator.py"))
    assert _spec and _spec.loader
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)
CopilotEmulator = sys.modules[_NAME].CopilotEmulator


@pytest.fixture
def emu_mod() -> Any:
    """The emulator module (as the other plugins' tests name theirs)."""
    return sys.modules[_NAME]


@pytest.fixture
async def copilot(
    aiohttp_server: Callable[..., Awaitable[Any]], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A running emulator; COPILOT_URL points at it and the timeouts are short."""
    emulator = CopilotEmulator()
    server = await aiohttp_server(emulator.app())
    emulator.base = str(server.make_url("")).rstrip("/")
    monkeypatch.setenv("COPILOT_URL", emulator.base)
    monkeypatch.setenv("COPILOT_START_TIMEOUT", "3")
    monkeypatch.setenv("COPILOT_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("COPILOT_FIRST_EVENT_TIMEOUT", "0.5")
    monkeypatch.setenv("COPILOT_IDLE_TIMEOUT", "0.5")
    return emulator


@pytest.fixture
async def gateway_url(copilot: Any, start_gateway: Any, tmp_path: Path) -> str:
    """A gateway with only this plugin, talking to the emulator (the kernel's
    ``openai_client`` / ``anthropic_client`` fixtures point at it)."""
    import g4f_server_copilot

    return await start_gateway(plugins=[g4f_server_copilot], data_dir=str(tmp_path))
