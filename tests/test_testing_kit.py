"""The helpers g4f_server.testing gives plugin authors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from g4f_server.testing import wait_until


async def test_wait_until_returns_once_the_condition_holds() -> None:
    flag: list[bool] = []
    asyncio.get_running_loop().call_later(0.05, flag.append, True)
    await wait_until(lambda: bool(flag), timeout=5)
    assert flag == [True]


async def test_wait_until_fails_the_test_after_its_timeout() -> None:
    with pytest.raises(AssertionError, match=r"socket closed not reached within 0\.05s"):
        await wait_until(lambda: False, timeout=0.05, what="socket closed")


PROJECT_TESTS = """
import pytest

@pytest.mark.live
def test_live(): pass

def test_offline(): pass
"""


def _pytest(project: Path, *args: str, cmd: tuple[str, ...] | None = None) -> str:
    (project / "test_project.py").write_text(PROJECT_TESTS)
    command = cmd or (sys.executable, "-m", "pytest")
    out = subprocess.run(
        [*command, "-q", "-p", "no:cacheprovider", f"--rootdir={project}", "-c", os.devnull,
         str(project), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_a_project_with_its_own_live_option_can_install_g4f_server(tmp_path: Path) -> None:
    """Our pytest plugin loads in every project that installs g4f-server: its option is
    namespaced, so it does not clash with the project's own ``--live``."""
    (tmp_path / "conftest.py").write_text(
        "def pytest_addoption(parser):\n    parser.addoption('--live', action='store_true')\n"
    )
    assert "1 passed, 1 skipped" in _pytest(tmp_path)
    assert "2 passed" in _pytest(tmp_path, "--g4f-live")


def test_dev_test_live_is_the_plugins_option(tmp_path: Path) -> None:
    """The README's ``./dev test --live`` still runs the live tests."""
    dev = str(Path(__file__).resolve().parents[1] / "dev")
    assert "2 passed" in _pytest(tmp_path, "--live", cmd=(dev, "test"))
