"""The real Claude Code CLI (npm ``@anthropic-ai/claude-code``, print mode) against a
running gateway with the Pollinations plugin behind its emulator (issue 25): it answers,
completes a tool round trip (its Read tool), streams, and none of its requests is
refused; a wrong key ends it at once (``x-should-retry: false``).

Claude Code gets only its documented environment for a custom endpoint (docs/api.md,
"Claude Code"), its telemetry and updates off, a temporary HOME, and a proxy on a closed
loopback port, so that anything it might send elsewhere goes nowhere. The package is
installed with npm into a cache folder on first use (``.ci/run`` installs Debian's
``nodejs npm`` when npm is missing); it ships a native binary per platform, which this
test runs directly (its postinstall only copies that binary)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import free_port, server_process

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "@anthropic-ai/claude-code"
# Pinned so that a run is repeatable; the report is about 2.1.3xx.
VERSION = os.environ.get("G4F_CLAUDE_CODE_VERSION", "2.1.332")
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "g4f-server"
    / f"claude-code-{VERSION}"
)
KEY = "sk-gateway-test"
MODEL = "openai"  # a Pollinations model the emulator lists
_STATUS = re.compile(r"event='request' method='(\w+)' path='([^']*)' status=(\d+)")


def _emulator_module() -> Any:
    name = "g4f_server_pollinations_tests_emulator"
    if name not in sys.modules:
        path = ROOT / "plugins" / "pollinations" / "tests" / "emulator.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def _binary(folder: Path) -> Path:
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
    machine = arch.get(platform.machine().lower(), platform.machine())
    return folder / "node_modules" / f"{PACKAGE}-linux-{machine}" / "claude"


@pytest.fixture(scope="module")
def claude() -> Path:
    """The Claude Code binary, installed into the cache folder when missing."""
    if sys.platform != "linux":
        pytest.skip("the test runs the linux build of Claude Code")
    binary = _binary(CACHE)
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (.ci/run installs Debian's nodejs npm)")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    # Into a fresh folder, renamed when complete: an interrupted install is never reused.
    partial = Path(tempfile.mkdtemp(prefix=CACHE.name + ".", dir=CACHE.parent))
    done = subprocess.run(
        [npm, "install", "--prefix", str(partial), "--no-audit", "--no-fund",
         "--no-package-lock", "--ignore-scripts", f"{PACKAGE}@{VERSION}"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert _binary(partial).exists(), f"no native binary for {platform.machine()}"
    try:
        partial.rename(CACHE)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return binary


@dataclass
class Gateway:
    base: str
    log: Path
    emulator: Any

    def statuses(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request in the access log but the test's own
        readiness checks (/health)."""
        found = _STATUS.finditer(self.log.read_text())
        return [(m[1], m[2], int(m[3])) for m in found if m[2] != "/health"]


@pytest.fixture
async def gateway(aiohttp_server: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Gateway]:
    emulator = _emulator_module().Emulator()
    server = await aiohttp_server(emulator.app, host="127.0.0.1")
    polli = str(server.make_url("")).rstrip("/")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "G4F_DATA_DIR": str(tmp_path / "data"),
        "G4F_API_KEY": KEY,
        "G4F_STARTUP_TIMEOUT": "5",
        "POLLINATIONS_TEXT_URL": f"{polli}/legacy-text",
        "POLLINATIONS_IMAGE_URL": f"{polli}/legacy-image",
        "POLLINATIONS_GEN_URL": f"{polli}/gen",
        "POLLINATIONS_ANON_TEXT_INTERVAL": "0",
        "POLLINATIONS_ANON_IMAGE_INTERVAL": "0",
        "COPILOT_URL": f"http://127.0.0.1:{free_port()}",
    }
    log = tmp_path / "gateway.log"
    # Started from a thread: the gateway lists the emulator's models (served by this
    # test's event loop) before it answers /health.
    running = server_process(env=env, log=log)
    _, base = await asyncio.to_thread(running.__enter__)
    try:
        yield Gateway(base, log, emulator)
    finally:
        await asyncio.to_thread(running.__exit__, None, None, None)


def text_deltas(lines: list[dict[str, Any]]) -> list[str]:
    """The text deltas of Claude Code's stream-json output (our Messages events, relayed)."""
    return [
        e["event"]["delta"]["text"]
        for e in lines
        if e.get("type") == "stream_event"
        and e["event"]["type"] == "content_block_delta"
        and e["event"]["delta"]["type"] == "text_delta"
    ]


async def run_claude(
    claude: Path, gateway: Gateway, workdir: Path, *args: str, key: str = KEY
) -> tuple[int, str, float]:
    """``claude -p ...`` in ``workdir``: exit code, output (stdout then stderr), seconds."""
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        # What docs/api.md tells a user to set.
        "ANTHROPIC_BASE_URL": gateway.base,
        "ANTHROPIC_AUTH_TOKEN": key,
        "ANTHROPIC_MODEL": MODEL,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": MODEL,  # its small model, for side requests
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        # Anything not for the gateway goes to a closed local port.
        "HTTPS_PROXY": f"http://127.0.0.1:{free_port()}",
        "HTTP_PROXY": f"http://127.0.0.1:{free_port()}",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(claude), "-p", *args, cwd=workdir, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()  # this process, by its handle
        await proc.wait()
        raise
    return proc.returncode or 0, (out + err).decode(), time.monotonic() - started


async def test_claude_code_answers_reads_a_file_and_streams(
    claude: Path, gateway: Gateway, tmp_path: Path
) -> None:
    work = tmp_path / "project"
    work.mkdir()
    notes = work / "notes.txt"
    notes.write_text("the secret word is pelican\n")

    # A question. (The emulator echoes; "[[reply]]" keeps it from calling a tool.)
    code, output, _ = await run_claude(claude, gateway, work, "What is 2 + 2? [[reply]]")
    assert code == 0, output
    assert "What is 2 + 2?" in output and "Echo:" in output

    # A tool round trip: the model asks for Read, Claude Code reads the file and sends
    # the result back, the model answers with it.
    prompt = f'Read my notes [[call Read {{"file_path": "{notes}"}}]]'
    code, output, _ = await run_claude(claude, gateway, work, prompt)
    assert code == 0, output
    assert "The tool said:" in output and "the secret word is pelican" in output
    results = [
        m for r in gateway.emulator.seen("chat") for m in r.json["messages"] if m["role"] == "tool"
    ]
    assert results and "pelican" in str(results[-1]["content"])

    # Streaming, as Claude Code shows it: its stream-json output relays our events.
    code, output, _ = await run_claude(
        claude, gateway, work, "Stream me [[reply]]",
        "--output-format", "stream-json", "--verbose", "--include-partial-messages",
    )  # fmt: skip
    assert code == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    deltas = text_deltas(lines)
    assert len(deltas) > 2 and "Stream me [[reply]]" in "".join(deltas)
    assert [e["subtype"] for e in lines if e.get("type") == "result"] == ["success"]

    # Every request Claude Code made streamed, and none was refused.
    assert all(r.json.get("stream") for r in gateway.emulator.seen("chat"))
    statuses = gateway.statuses()
    assert len(statuses) >= 4  # 1 + 2 (the round trip) + 1, and any side requests
    assert [s for s in statuses if s[2] >= 400] == []
    assert {path for _, path, _ in statuses} == {"/v1/messages"}


async def test_a_wrong_key_ends_claude_code_at_once(
    claude: Path, gateway: Gateway, tmp_path: Path
) -> None:
    code, output, seconds = await run_claude(claude, gateway, tmp_path, "hi", key="sk-wrong")
    assert code != 0
    assert "401" in output and "Invalid API key" in output
    assert seconds < 5, f"Claude Code took {seconds:.1f} s to give up"
    # One refused request, no retries: the 401 said x-should-retry: false.
    assert [s for _, _, s in gateway.statuses()] == [401]
