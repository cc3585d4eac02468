"""The helpers g4f_server.testing gives plugin authors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _run(project: Path, *args: str, cmd: tuple[str, ...] | None = None) -> Any:
    """pytest in ``project`` (its own rootdir, none of our settings: ``-c /dev/null``)."""
    (project / "test_project.py").write_text(PROJECT_TESTS)
    command = cmd or (sys.executable, "-m", "pytest")
    return subprocess.run(
        [*command, "-q", "-p", "no:cacheprovider", f"--rootdir={project}", "-c", os.devnull,
         str(project), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _pytest(project: Path, *args: str, cmd: tuple[str, ...] | None = None) -> str:
    out = _run(project, *args, cmd=cmd)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


OWN_LIVE_OPTION = """
def pytest_addoption(parser):
    parser.addoption('--live', action='store_true')
"""


def test_installing_g4f_server_adds_nothing_to_another_projects_tests(tmp_path: Path) -> None:
    """No pytest11 entry point: a project that does not ask for the kit runs as before,
    its own tests marked ``live`` included, and sees no option or fixture of ours."""
    (tmp_path / "conftest.py").write_text(OWN_LIVE_OPTION)
    assert "2 passed" in _pytest(tmp_path)
    unknown = _run(tmp_path, "--g4f-live")
    assert unknown.returncode != 0 and "--g4f-live" in unknown.stderr
    assert "start_gateway" not in _pytest(tmp_path, "--fixtures")
    assert "--g4f-live" not in _pytest(tmp_path, "--help")
    trace = _pytest(tmp_path, "--trace-config")  # every plugin pytest registered
    assert "g4f_server.testing" not in trace and "g4f_server/testing" not in trace


def test_a_project_turns_the_kit_on_with_p(tmp_path: Path) -> None:
    assert "1 passed, 1 skipped" in _pytest(tmp_path, "-p", "g4f_server.testing")
    assert "2 passed" in _pytest(tmp_path, "-p", "g4f_server.testing", "--g4f-live")
    assert "start_gateway" in _pytest(tmp_path, "-p", "g4f_server.testing", "--fixtures")


def test_a_project_turns_the_kit_on_in_its_conftest(tmp_path: Path) -> None:
    """...next to its own ``--live`` option: ours is namespaced, they do not clash."""
    conftest = 'pytest_plugins = ["g4f_server.testing"]\n' + OWN_LIVE_OPTION
    (tmp_path / "conftest.py").write_text(conftest)
    assert "1 passed, 1 skipped" in _pytest(tmp_path)
    assert "2 passed" in _pytest(tmp_path, "--g4f-live")


def test_dev_test_live_is_the_plugins_option(tmp_path: Path) -> None:
    """The README's ``./dev test --live`` still runs the live tests (the repository turns
    the kit on in its addopts; this project, with no settings of ours, with -p)."""
    dev = str(Path(__file__).resolve().parents[2] / "dev")
    out = _pytest(tmp_path, "-p", "g4f_server.testing", "--live", cmd=(dev, "test"))
    assert "2 passed" in out
