"""Fixtures: emulated OpenAI-compatible upstreams (127.0.0.1 only) and a gateway with
the Groq preset turned on and pointed at one of them through GROQ_BASE_URL."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# Loaded under a unique name: pytest runs with --import-mode=importlib and other plugins'
# tests have an "emulator" module of their own.
_NAME = "g4f_server_openai_compat_tests_emulator"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("emulator.py"))
    assert _spec and _spec.loader
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])
emu_module = sys.modules[_NAME]

# Every preset's variables, cleared so that the developer's own keys never reach a test.
_PRESET_VARS = [
    var
    for preset in __import__("g4f_server_openai_compat").PRESETS.values()
    for var in (*preset.key_env, f"{preset.key.upper()}_BASE_URL", preset.account_env or "")
    if var
]


@pytest.fixture(autouse=True)
def clean_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("live"):
        return  # live tests use the operator's real keys
    for var in _PRESET_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def emu_mod() -> Any:
    return emu_module


@pytest.fixture
def make_emulator(aiohttp_server: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``await make_emulator(**fields)`` -> a running Emulator; ``emu.base`` is its
    OpenAI base URL (``http://127.0.0.1:PORT/v1``), ``emu.url`` the server's root."""

    async def make(**fields: Any) -> Any:
        emu = emu_module.Emulator(**fields)
        server = await aiohttp_server(emu.app, host="127.0.0.1")
        emu.url = str(server.make_url("")).rstrip("/")  # the kit's: the server's root
        emu.base = f"{emu.url}/v1"
        return emu

    return make


@pytest.fixture
async def emulator(make_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An upstream with Groq's documented quirks, where GROQ_BASE_URL points."""
    emu = await make_emulator(
        refused=frozenset({"logprobs", "logit_bias", "top_logprobs"}),
        refused_message_fields=frozenset({"name"}),
    )
    monkeypatch.setenv("GROQ_BASE_URL", emu.base)
    monkeypatch.setenv("GROQ_API_KEY", emu_module.KEY)
    return emu


@pytest.fixture
async def gateway_url(emulator: Any, start_gateway: Any, tmp_path: Path) -> str:
    """A gateway with only this plugin and ``--upstreams groq`` (the kernel's
    ``openai_client`` / ``anthropic_client`` fixtures point at it)."""
    import g4f_server_openai_compat

    return await start_gateway(
        plugins=[g4f_server_openai_compat], data_dir=str(tmp_path), upstreams=["groq"]
    )
