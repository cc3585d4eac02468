"""`g4f-server new-provider`, as an author meets it: the package it writes, installed in a
fresh venv, passes its own tests and `g4f-server conformance` against its emulator.

Offline: the fresh venv sees the dev venv's packages through a ``.pth`` line (what
``--system-site-packages`` would give if the dev venv were the system), and pip installs
with ``--no-index --no-build-isolation``: the kernel as a wheel built from the workspace
(its templates are package data: a wheel shows whether they ship), the scaffold's package
as the README says, ``pip install -e ".[test]"``. Nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from g4f_server.testing import scaffold

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str | Path, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("G4F_", "PYTEST", "VIRTUAL"))}
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_the_names_of_a_provider() -> None:
    names = scaffold.names("my-llm")
    assert names["dist"] == "g4f-server-my-llm" and names["package"] == "g4f_server_my_llm"
    assert names["env"] == "MY_LLM" and names["provider"] == "MyLlm"
    with pytest.raises(ValueError, match="lower-case"):
        scaffold.names("My LLM")


def test_new_provider_refuses_to_overwrite(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("g4f-server")
    first = _run(cli, "new-provider", "parrot", "--dir", tmp_path, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert 'pip install -e ".[test]"' in first.stdout
    again = _run(cli, "new-provider", "parrot", "--dir", tmp_path, cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr


def test_the_scaffold_installs_and_passes_its_tests_and_conformance(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("g4f-server")
    made = _run(cli, "new-provider", "parrot", "--dir", tmp_path, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "g4f-server-parrot"
    readme = (package / "README.md").read_text()
    assert 'pip install -e ".[test]"' in readme and "\npytest\n" in readme

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    fresh = env_dir / "bin"
    where_code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = _run(fresh / "python", "-c", where_code, cwd=tmp_path).stdout.strip()
    Path(purelib, "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = (fresh / "python", "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation")
    kernel = _run(*pip, ROOT, cwd=tmp_path)
    assert kernel.returncode == 0, kernel.stdout + kernel.stderr
    plugin = _run(*pip, "-e", ".[test]", cwd=package)
    assert plugin.returncode == 0, plugin.stdout + plugin.stderr
    kernel_code = "import g4f_server; print(g4f_server.__file__)"
    where = _run(fresh / "python", "-c", kernel_code, cwd=tmp_path)
    assert str(env_dir) in where.stdout  # the kernel of the fresh venv, not the workspace's

    tests = _run(fresh / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    check = _run(
        fresh / "g4f-server", "conformance", "parrot", "--emulator", "tests/emulator.py",
        "--faults", cwd=package,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")]
    for name in ("chat.completions.stream", "messages", "faults.500", "hangup", "secrets"):
        assert any(line.startswith(f"PASS {name}:") for line in lines), check.stdout
