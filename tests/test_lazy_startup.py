"""The idle server stays small: pydantic and the request schemas load with the first
request that has a body, not at start-up (issue #6: idle RSS and cold start).

Checked on the real process, as users start it, through what it has mapped into memory
(/proc/PID/maps): pydantic's compiled core is a shared library, mapped once imported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/PID/maps")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pydantic_loaded(pid: int) -> bool:
    return "_pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


def test_idle_server_has_no_pydantic_until_a_request_body_arrives(tmp_path: Path) -> None:
    port, closed = _free_port(), _free_port()
    upstream = f"http://127.0.0.1:{closed}"  # nothing listens: no traffic leaves the host
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "G4F_DATA_DIR": str(tmp_path / "data"),
        "G4F_STARTUP_TIMEOUT": "2",
        "COPILOT_URL": upstream,
        **{f"POLLINATIONS_{n}_URL": upstream for n in ("TEXT", "IMAGE", "GEN", "AUDIO")},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "g4f_server", "api", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.05)
        providers = json.load(urllib.request.urlopen(base + "/v1/providers"))["data"]
        assert {p["id"] for p in providers} >= {"Copilot", "Pollinations"}
        urllib.request.urlopen(base + "/v1/models").read()
        assert not _pydantic_loaded(proc.pid)

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
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_request_models_are_still_importable_from_the_provider_module() -> None:
    from g4f_server import provider
    from g4f_server.schemas.chat import ChatRequest
    from g4f_server.schemas.media import ImageRequest, SpeechRequest, TranscriptionRequest

    assert provider.ChatRequest is ChatRequest
    assert provider.ImageRequest is ImageRequest and provider.SpeechRequest is SpeechRequest
    assert provider.TranscriptionRequest is TranscriptionRequest
    with pytest.raises(AttributeError, match="no attribute 'ChatReqest'"):
        provider.ChatReqest  # noqa: B018  # a typo still fails loudly
