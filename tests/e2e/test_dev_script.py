"""``./dev`` on a fresh clone says what it installs instead of a minute of silence, and
installs what its command needs: ``serve`` the server alone (no dev group), ``test``,
``lint`` and ``bench`` the dev tools too.

The script runs for real (bash, in a copy of the repository's ``dev``); what it calls to
install, ``python3 -m venv``, pip and uv, are stand-ins on PATH that record their arguments
and create what the real ones would (``.tools/bin/uv``, ``.venv``), so the test needs no
network and takes well under a second. The real installers run on every ``./dev`` call
of the suite itself (tests/contract/test_testing_kit.py drives ``./dev test``).
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parents[2] / "dev"

PYTHON3 = """#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 99
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "pip $*" >> "$STUB_LOG"\\ncp "$STUB_UV" "$(dirname "$0")/uv"\\n' \
  > "$3/bin/python"
chmod +x "$3/bin/python"
"""
# The stand-in uv records the set it synced (.venv/synced: "runtime" or "dev"); --check
# passes when that set covers the one asked for (--inexact: the runtime set is covered
# by the dev set too, as uv's own --inexact check does). The programs it "installs" log
# their calls and succeed.
UV = """#!/bin/sh
echo "uv $*" >> "$STUB_LOG"
case " $* " in *" --no-dev "*) want=runtime ;; *) want=dev ;; esac
case " $* " in
  *" --check "*)
    have=$(cat .venv/synced 2>/dev/null)
    [ "$have" = "$want" ] || { [ "$have" = dev ] && [ "$want" = runtime ] \\
      && case " $* " in *" --inexact "*) true ;; *) false ;; esac; }
    exit $? ;;
esac
mkdir -p .venv/bin && echo "$want" > .venv/synced
for tool in g4f-server python ruff lint-imports; do
  printf '#!/bin/sh\\necho "%s $*" >> "$STUB_LOG"\\n' "$tool" > ".venv/bin/$tool"
  chmod +x ".venv/bin/$tool"
done
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


def run_dev(repo: Path, *args: str, terminal: bool = False) -> tuple[str, list[str]]:
    """``./dev ARGS`` (``serve`` when none): its stderr, and the calls it made since the
    last run (installers, then the command's program)."""
    args = args or ("serve",)
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
            ["bash", "dev", *args], cwd=repo, env=env, stderr=follower, timeout=30
        )
        os.close(follower)
        err = os.read(leader, 65536).decode()
        os.close(leader)
    else:
        done = subprocess.run(
            ["bash", "dev", *args], cwd=repo, env=env, capture_output=True, timeout=30,
            text=True,
        )  # fmt: skip
        err = done.stderr
    assert done.returncode == 0, err
    return err, log.read_text().splitlines()


def dev_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.startswith("dev: ")]


def sync_flags(call: str) -> set[str]:
    return set(call.split()[1:])


def test_first_serve_installs_the_server_alone_then_later_runs_are_quiet(clone: Path) -> None:
    err, calls = run_dev(clone, "serve", "--port", "8080")
    said = dev_lines(err)
    assert said[0] == "dev: first run: installing uv into .tools/ ..."
    assert said[1].startswith("dev: installing the kernel and the plugins ")
    assert "dev tools" not in said[1]
    assert said[2].startswith("dev: .venv ready in ")
    assert len(said) == 3
    pip, check, sync, serve = calls
    assert pip.startswith("pip -m pip install") and "uv>=0.6.10" in pip
    assert "--check" in check.split()
    # without the dev group; --inexact: a later serve keeps the tools `./dev test` added
    runtime = {
        "sync", "--all-packages", "--all-extras", "--no-extra", "testing", "--locked", "--no-dev",
        "--inexact",
    }  # fmt: skip
    assert runtime | {"--compile-bytecode"} <= sync_flags(sync)
    assert sync_flags(check) == runtime | {"--check", "--quiet"}
    assert "--quiet" in sync.split()  # not a terminal (CI's log): our lines only
    assert serve == "g4f-server api --port 8080"

    err, calls = run_dev(clone, "serve")  # up to date: one quick check, nothing said
    assert dev_lines(err) == []
    assert len(calls) == 2 and "--check" in calls[0].split()
    assert calls[1] == "g4f-server api"


@pytest.mark.parametrize(
    ("command", "program"),
    [
        (("test", "-q", "--live"), "python -m pytest -q --g4f-live"),
        (("lint",), "lint-imports --no-cache"),
        (("bench", "--rounds", "1"), "python bench/run.py --rounds 1"),
    ],
)
def test_test_lint_and_bench_add_the_dev_tools(
    clone: Path, command: tuple[str, ...], program: str
) -> None:
    run_dev(clone, "serve")  # a clone that has served: the runtime set only
    err, calls = run_dev(clone, *command)
    assert dev_lines(err)[0] == "dev: updating .venv to uv.lock ..."
    check, sync, *ran = calls
    dev_set = {"sync", "--all-packages", "--all-extras", "--locked"}
    assert sync_flags(check) == dev_set | {"--check", "--quiet"}  # the dev group included
    assert dev_set | {"--compile-bytecode"} <= sync_flags(sync)
    assert not {"--no-dev", "--inexact"} & sync_flags(sync)  # exact: uv.lock's whole set
    assert ran[-1] == program

    err, calls = run_dev(clone, *command)  # now up to date for this command ...
    assert dev_lines(err) == [] and "--check" in calls[0].split()
    err, calls = run_dev(clone, "serve")  # ... and for serve, which removes nothing
    assert dev_lines(err) == [] and len(calls) == 2


def test_a_fresh_clone_running_the_tests_first_says_so(clone: Path) -> None:
    err, calls = run_dev(clone, "test")
    said = dev_lines(err)
    assert said[1].startswith("dev: installing the kernel, the plugins and the dev tools ")
    assert "(about a minute)" in said[1]
    assert "--no-dev" not in calls[2].split()


def test_an_unknown_command_prints_the_usage_and_installs_nothing(clone: Path) -> None:
    done = subprocess.run(
        ["bash", "dev", "nothing"], cwd=clone, capture_output=True, text=True, timeout=30,
        env={"PATH": f"{clone.parent / 'stubs'}:/usr/bin:/bin", "HOME": str(clone.parent)},
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("usage: ./dev serve")
    assert not (clone / ".tools").exists() and not (clone / ".venv").exists()


def test_an_outdated_venv_is_updated_and_said_so(clone: Path) -> None:
    run_dev(clone)
    (clone / ".venv" / "synced").unlink()  # as after a pull that changed uv.lock
    err, calls = run_dev(clone)
    said = dev_lines(err)
    assert said[0] == "dev: updating .venv to uv.lock ..."
    assert said[1].startswith("dev: .venv ready in ")
    assert [c for c in calls if c.startswith("uv ") and "--check" not in c.split()]  # synced


def test_on_a_terminal_uv_shows_its_own_progress(clone: Path) -> None:
    err, calls = run_dev(clone, terminal=True)
    assert "installing uv" in err and "(about half a minute)" in err
    sync = [c for c in calls if c.startswith("uv sync") and "--check" not in c.split()]
    assert len(sync) == 1 and "--quiet" not in sync[0].split()
