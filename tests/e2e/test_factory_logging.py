"""Logging when another program serves the app (gunicorn's aiohttp worker, or any host
that imports ``create_app``): G4F_JSON_LOGS and G4F_DEBUG apply without our runner.

The process below does what ``aiohttp.GunicornWebWorker`` does with
``gunicorn 'g4f_server.api:create_app()'``: call the factory, then serve the app with
aiohttp's own runner; our ``api`` command and its logging set-up never run.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from tests.server_process import free_port, offline_env

HOST = (
    "import sys\n"
    "from aiohttp import web\n"
    "from g4f_server.api import create_app\n"
    "web.run_app(create_app(), host='127.0.0.1', port=int(sys.argv[1]), print=None)\n"
)


def _serve_and_read_log(tmp_path: Path, **env: str) -> str:
    port = free_port()
    log = tmp_path / "stderr.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOST, str(port)],
            env=offline_env(str(tmp_path), G4F_LOAD_PLUGINS="none", **env),
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return log.read_text()


def test_json_logs_apply_under_a_foreign_runner(tmp_path: Path) -> None:
    text = _serve_and_read_log(tmp_path, G4F_JSON_LOGS="true")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    events = [orjson.loads(line) for line in lines]
    access = [e for e in events if e.get("event") == "request"]
    assert access and access[0]["path"] == "/v1/models" and access[0]["status"] == 200
    assert "DEBUG:" not in text


def test_debug_applies_under_a_foreign_runner(tmp_path: Path) -> None:
    text = _serve_and_read_log(tmp_path, G4F_DEBUG="true")
    assert "DEBUG:asyncio" in text  # the stdlib loggers at DEBUG: asyncio's first line
    assert "event='request'" in text and "path='/v1/models'" in text  # key=value lines
