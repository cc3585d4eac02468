"""The ``g4f-server`` command line as a user runs it (subprocesses)."""

from __future__ import annotations

import subprocess
import sys

from g4f_server import __version__


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_version() -> None:
    out = run("-m", "g4f_server", "--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"g4f-server {__version__}"


def test_python_m_cli_runs_the_command() -> None:
    """``python -m g4f_server.cli api`` (the contract's Docker line) must not be a no-op."""
    out = run("-m", "g4f_server.cli", "api", "--help")
    assert out.returncode == 0
    assert "--port" in out.stdout
    assert run("-m", "g4f_server.cli", "--version").stdout.strip().endswith(__version__)
