"""``./dev`` on a fresh clone says what it installs instead of a minute of silence.

The script runs for real (bash, in a copy of the repository's ``dev``); what it calls to
install, ``python3 -m venv``, pip and uv, are stand-ins on PATH that record their arguments
and create what the real ones would (``.tools/bin/uv``, ``.venv``), so the test needs no
network and takes well under a second. The real installers run on every ``./dev`` call
of the suite itself (tests/test_testing_kit.py drives ``./dev test``).
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parents[1] / "dev"

PYTHON3 = """#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 99
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "pip $*" >> "$STUB_LOG"\\ncp "$STUB_UV" "$(dirname "$0")/uv"\\n' \
  > "$3/bin/python"
chmod +x "$3/bin/python"
"""
UV = """#!/bin/sh
echo "uv $*" >> "$STUB_LOG"
case " $* " in *" --check "*) [ -f .venv/synced ]; exit $? ;; esac
mkdir -p .venv/bin && touch .venv/synced
"""


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(DEV, repo / "dev")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, text in (("python3", PYTHON3), ("uv", UV)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    return repo


def run_dev(repo: Path, *, terminal: bool = False) -> tuple[str, list[str]]:
    """``./dev nothing`` (installs, then the usage line, exit 2): its stderr, and the
    installer calls it made since the last run."""
    stubs = repo.parent / "stubs"
    log = repo.parent / "calls.log"
    log.write_text("")
    env = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "STUB_LOG": str(log),
        "STUB_UV": str(stubs / "uv"),
        "HOME": str(repo.parent),
    }
    if terminal:  # stderr on a pseudo-terminal, as in a user's shell
        leader, follower = pty.openpty()
        done = subprocess.run(
            ["bash", "dev", "nothing"], cwd=repo, env=env, stderr=follower, timeout=30
        )
        os.close(follower)
        err = os.read(leader, 65536).decode()
        os.close(leader)
    else:
        done = subprocess.run(
            ["bash", "dev", "nothing"], cwd=repo, env=env, capture_output=True, timeout=30,
            text=True,
        )  # fmt: skip
        err = done.stderr
    assert done.returncode == 2  # the usage line: the install part passed
    return err, log.read_text().splitlines()


def dev_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.startswith("dev: ")]


def test_first_run_says_what_it_installs_then_later_runs_are_quiet(clone: Path) -> None:
    err, calls = run_dev(clone)
    said = dev_lines(err)
    assert said[0] == "dev: first run: installing uv into .tools/ ..."
    assert said[1].startswith("dev: installing ") and "(about a minute)" in said[1]
    assert said[2].startswith("dev: .venv ready in ")
    assert len(said) == 3
    pip, check, sync = calls
    assert pip.startswith("pip -m pip install") and "uv>=0.6.10" in pip
    assert "--check" in check.split()
    flags = sync.split()
    assert {"sync", "--all-packages", "--all-extras", "--locked", "--compile-bytecode"} <= set(
        flags
    )
    assert "--quiet" in flags  # not a terminal (CI's log): our lines only

    err, calls = run_dev(clone)  # up to date: one quick check, nothing said
    assert dev_lines(err) == []
    assert len(calls) == 1 and "--check" in calls[0].split()


def test_an_outdated_venv_is_updated_and_said_so(clone: Path) -> None:
    run_dev(clone)
    (clone / ".venv" / "synced").unlink()  # as after a pull that changed uv.lock
    err, calls = run_dev(clone)
    said = dev_lines(err)
    assert said[0] == "dev: updating .venv to uv.lock ..."
    assert said[1].startswith("dev: .venv ready in ")
    assert [c for c in calls if "--check" not in c.split()]  # it synced


def test_on_a_terminal_uv_shows_its_own_progress(clone: Path) -> None:
    err, calls = run_dev(clone, terminal=True)
    assert "installing uv" in err and "(about a minute)" in err
    sync = [c for c in calls if c.startswith("uv sync") and "--check" not in c.split()]
    assert len(sync) == 1 and "--quiet" not in sync[0].split()
