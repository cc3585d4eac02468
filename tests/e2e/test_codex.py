"""Codex CLI (npm ``@openai/codex``) against a running gateway, as a user sets it up: only
a custom model provider in its config.toml (docs/api.md, "Codex"), the Pollinations
plugin behind its emulator. Codex answers, runs a tool the model called and streams,
and the gateway refuses none of its requests.

Codex is installed into a cache folder on first use (``$G4F_TEST_CACHE`` or
``~/.cache/g4f-server-tests``); skipped only when npm itself is missing. Its telemetry
is off and every connection it makes outside 127.0.0.1 goes to a closed local port
(``HTTPS_PROXY``), so nothing leaves the host.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from tests.server_process import free_port

CODEX_VERSION = "0.171.0"  # the version issue 25 was tried with
ROOT = Path(__file__).resolve().parents[2]
_EMULATOR = "g4f_server_pollinations_tests_emulator"  # the plugin's conftest name


def codex_binary() -> Path:
    """The ``codex`` launcher, installed with npm into the test cache when missing."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm and node are not installed (Debian: apt-get install nodejs npm)")
    cache = Path(os.environ.get("G4F_TEST_CACHE", Path.home() / ".cache/g4f-server-tests"))
    folder = cache / "codex"
    binary = folder / "node_modules/.bin/codex"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
             f"@openai/codex@{CODEX_VERSION}"],
            check=True, timeout=900, capture_output=True,
        )  # fmt: skip
    return binary


def emulator_module() -> Any:
    if _EMULATOR not in sys.modules:
        path = ROOT / "plugins/pollinations/tests/emulator.py"
        spec = importlib.util.spec_from_file_location(_EMULATOR, path)
        assert spec and spec.loader
        sys.modules[_EMULATOR] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[_EMULATOR])
    return sys.modules[_EMULATOR]


def codex_config(base_url: str) -> str:
    """The config.toml of docs/api.md's Codex section, telemetry off."""
    return f"""model = "openai"
model_provider = "g4f"
check_for_update_on_startup = false

[model_providers.g4f]
name = "g4f-server"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "G4F_API_KEY"

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
log_user_prompt = false
"""


@pytest.fixture
async def setup(
    aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Path, dict[str, str], Any, list[tuple[str, str, int]]]:
    binary = codex_binary()
    emu = emulator_module().Emulator()
    upstream = await aiohttp_server(emu.app, host="127.0.0.1")
    emu.base = base = str(upstream.make_url("")).rstrip("/")
    for host, prefix in (("TEXT", "legacy-text"), ("IMAGE", "legacy-image"), ("GEN", "gen")):
        monkeypatch.setenv(f"POLLINATIONS_{host}_URL", f"{base}/{prefix}")
    monkeypatch.setenv("POLLINATIONS_ANON_TEXT_INTERVAL", "0")
    monkeypatch.delenv("POLLINATIONS_API_KEY", raising=False)
    import g4f_server_pollinations
    from g4f_server_pollinations.config import settings

    settings.cache_clear()
    app = create_app(
        AppConfig(data_dir=str(tmp_path / "data"), api_key="sk-local"),
        plugins=[g4f_server_pollinations],
        load_entrypoints=False,
    )
    answered: list[tuple[str, str, int]] = []  # every request Codex made, with its status

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        answered.append((request.method, request.path, response.status))

    app.on_response_prepare.append(record)
    gateway = await aiohttp_server(app, host="127.0.0.1")
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(codex_config(str(gateway.make_url("")).rstrip("/")))
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        "PATH": f"{Path(shutil.which('node') or '/usr/bin/node').parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "G4F_API_KEY": "sk-local",
        "HTTPS_PROXY": closed,
        "HTTP_PROXY": closed,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    yield binary, env, emu, answered
    settings.cache_clear()


async def run_codex(binary: Path, env: dict[str, str], cwd: Path, prompt: str) -> list[Any]:
    proc = await asyncio.create_subprocess_exec(
        str(binary), "exec", "--json", "--skip-git-repo-check", prompt,
        env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 180)
    except TimeoutError:
        proc.kill()  # our own child, by its handle
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()[-2000:]
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


async def test_codex_answers_runs_a_tool_and_streams(setup: Any, tmp_path: Path) -> None:
    binary, env, emu, answered = setup
    events = await run_codex(binary, env, tmp_path, "say hello")
    items = [e["item"] for e in events if e.get("type") == "item.completed"]
    # The model (the emulator) called Codex's first tool, exec_command; Codex ran it...
    command = next(i for i in items if i["type"] == "command_execution")
    assert "Paris" in command["command"]
    assert "command not found" in command["aggregated_output"]
    # ...sent its output back, and the answer that followed is the agent's message.
    answer = [i for i in items if i["type"] == "agent_message"][-1]["text"]
    assert answer.startswith("The tool said:") and "command not found" in answer
    assert events[-1]["type"] == "turn.completed"
    # Two responses, both streamed (the upstream was asked for a stream), none refused.
    chats = emu.seen("chat")
    assert len(chats) == 2 and all(c.json["stream"] is True for c in chats)
    assert chats[1].json["messages"][-1]["role"] == "tool"
    # Codex's namespace tools reached the provider flattened; its web_search was dropped.
    names = [t["function"]["name"] for t in chats[0].json["tools"]]
    assert "exec_command" in names and "spawn_agent" in names
    assert not any("web_search" in name for name in names)
    posts = [(m, p, s) for m, p, s in answered if p.startswith("/v1/")]
    assert posts and all(s < 400 for _, _, s in posts), posts
    assert ("POST", "/v1/responses", 200) in posts
