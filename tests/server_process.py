"""A real ``python -m g4f_server api`` process, as users start it, for the tests that need
the whole program (CLI, entry points, workers, memory): started on a free port, waited for
until ``/health`` answers, and terminated afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_env(home: str, **extra: str) -> dict[str, str]:
    """The environment of a server whose installed plugins point at a port nobody listens
    on, so that no traffic leaves the host; ``home`` holds its data."""
    upstream = f"http://127.0.0.1:{free_port()}"
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "G4F_DATA_DIR": f"{home}/data",
        "G4F_STARTUP_TIMEOUT": "2",
        "COPILOT_URL": upstream,
        **{f"POLLINATIONS_{n}_URL": upstream for n in ("TEXT", "IMAGE", "GEN", "AUDIO")},
        **extra,
    }


@contextlib.contextmanager
def server_process(
    *args: str, env: dict[str, str], timeout: float = 30, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``g4f-server api --port <free> *args``; yields the process and its base URL. Its
    log (stderr) goes to the file ``log`` when given, else nowhere."""
    port = free_port()
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("wb")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            [sys.executable, "-m", "g4f_server", "api", "--port", str(port), *args],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)
        yield proc, base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
