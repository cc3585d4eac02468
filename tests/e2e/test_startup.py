"""Start-up as users run it, on the real process.

- The idle server stays small: pydantic and the request schemas load with the first
  request that has a body, not at start-up (issue #6: idle RSS and cold start), and
  msgspec (Pollinations' streamed-chunk reader) with the first streamed answer. Checked
  through what the process has mapped (/proc/PID/maps): both compiled cores are shared
  libraries, mapped once imported.
- ``--workers N`` starts N serving processes that stop with their parent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.server_process import offline_env, server_process

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/PID/maps")


def _pydantic_loaded(pid: int) -> bool:
    return "_pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


def _msgspec_loaded(pid: int) -> bool:
    return "msgspec/_core" in Path(f"/proc/{pid}/maps").read_text()


def test_idle_server_has_no_pydantic_until_a_request_body_arrives(tmp_path: Path) -> None:
    env = offline_env(str(tmp_path))
    with server_process(env=env) as (proc, base):
        providers = json.load(urllib.request.urlopen(base + "/v1/providers"))["data"]
        assert {p["id"] for p in providers} >= {"Copilot", "Pollinations"}
        urllib.request.urlopen(base + "/v1/models").read()
        assert not _pydantic_loaded(proc.pid)
        assert not _msgspec_loaded(proc.pid)

        bad = urllib.request.Request(
            base + "/v1/chat/completions",
            data=b'{"model": "x", "messages": "not a list"}',
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(bad)
        assert caught.value.code == 400
        error = json.load(caught.value)["error"]
        assert error["param"] == "messages" and error["type"] == "invalid_request_error"
        assert _pydantic_loaded(proc.pid)  # the check above could have failed


def _imported(log: Path) -> set[str]:
    """The modules a process imported, from its ``-X importtime`` lines."""
    lines = log.read_text().splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}


def test_the_idle_server_imports_neither_rich_nor_pydantic(tmp_path: Path) -> None:
    """typer (>= 0.29) requires rich and converts options through pydantic; neither may
    reach the server's own import path (cli.py parses ``api`` without the conversion,
    logs.py imports structlog without rich). ``--help`` may load them."""
    env = offline_env(str(tmp_path), PYTHONPROFILEIMPORTTIME="1")
    log = tmp_path / "server.log"
    with server_process(env=env, log=log) as (_, base):
        urllib.request.urlopen(base + "/v1/models").read()
    imported = _imported(log)
    assert {"g4f_server.cli", "typer", "structlog.dev", "aiohttp.web"} <= imported
    # Their modules (the bare name "rich" is logged too: logs.py's attempt that fails)
    loaded = {m for m in imported if m.split(".")[0] in ("rich", "pydantic", "pygments")}
    assert loaded <= {"rich"}, loaded
    assert "typer._adapters" not in imported  # typer's pydantic conversion

    help_log = tmp_path / "help.log"
    with help_log.open("w") as err:
        subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "g4f_server", "api", "-h"],
            stdout=subprocess.DEVNULL, stderr=err, timeout=60, check=True,
        )  # fmt: skip
    assert "typer._adapters" in _imported(help_log)  # the check above could have failed


def test_request_models_are_still_importable_from_their_old_homes() -> None:
    """The contract's request models live in g4f_server.requests; provider (lazily) and
    schemas.chat / schemas.media (for one release) hand on the same classes."""
    from g4f_server import provider
    from g4f_server.requests import ChatRequest, ImageRequest, SpeechRequest, TranscriptionRequest
    from g4f_server.schemas import chat as old_chat
    from g4f_server.schemas import media as old_media

    assert old_chat.ChatRequest is ChatRequest and old_media.ImageRequest is ImageRequest

    assert provider.ChatRequest is ChatRequest
    assert provider.ImageRequest is ImageRequest and provider.SpeechRequest is SpeechRequest
    assert provider.TranscriptionRequest is TranscriptionRequest
    with pytest.raises(AttributeError, match="no attribute 'ChatReqest'"):
        provider.ChatReqest  # noqa: B018  # a typo still fails loudly


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def test_workers_serve_and_stop_with_their_parent(tmp_path: Path) -> None:
    """``--workers 2`` starts two serving processes on one port; stopping the parent
    stops them too (no orphans holding the port)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "G4F_DATA_DIR": str(tmp_path)}
    with server_process("--workers", "2", "--load-plugins", "none", env=env) as (proc, base):
        assert json.load(urllib.request.urlopen(base + "/health"))["status"] == "ok"
        workers = _children(proc.pid)  # the two workers and multiprocessing's tracker
        spawned = [w for w in workers if "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()]
        assert len(spawned) == 2
    for worker in workers:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{worker}").exists() and "Z" not in _state(worker):
            assert time.monotonic() < deadline, f"worker {worker} outlived its parent"
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"
