"""The Dockerfile's install step, run as the build runs it (Docker itself may be missing):
the files it copies into a fresh folder, its ``ENV UV_*`` settings, and its ``uv sync``
command with the uv that ``./dev`` uses. The environment it makes must hold exactly the
versions of ``uv.lock`` (the ones the tests ran against), without the dev tools."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


@pytest.mark.skipif(not UV.exists(), reason="./dev installs uv into .tools/")
def test_the_image_installs_the_locked_versions(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    # The user's uv cache, offline: the wheels the tests' own .venv came from, no network.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env["UV_OFFLINE"] = "1"
    sync: list[str] | None = None
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for source in sources:
                path = ROOT / source
                if path.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", ".venv", "*.egg-info")
                    shutil.copytree(path, app / source, ignore=ignore)
                else:
                    shutil.copy(path, app / source)
        elif word == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                if name.startswith("UV_"):
                    env[name] = value
        elif word == "RUN" and rest.startswith("uv sync"):
            sync = shlex.split(rest)[1:]
    assert sync is not None, "the Dockerfile does not install with uv sync"
    assert "--locked" in sync  # a lock that no longer matches pyproject.toml fails the build
    # --no-cache only keeps the image small; here the wheels come from the local cache.
    args = [a for a in sync if a != "--no-cache"]
    done = subprocess.run(
        [str(UV), *args], cwd=app, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr

    python = app / ".venv" / "bin" / "python"
    listed = subprocess.run(
        [str(UV), "pip", "list", "--format", "json", "--python", str(python)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    installed = {_normal(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {_normal(p["name"]): p["version"] for p in lock["package"] if "version" in p}
    for name, version in installed.items():
        assert locked.get(name) == version, (name, version, locked.get(name))
    for wanted in ("g4f-server", "g4f-server-copilot", "g4f-server-pollinations", "redis"):
        assert wanted in installed
    assert "uvloop" in installed and "pytest" not in installed and "ruff" not in installed

    # Not editable: the kernel is a copy in site-packages, not a path into /app/core.
    found = subprocess.run(
        [str(python), "-c", "import g4f_server; print(g4f_server.__file__)"],
        env={**env, "PYTHONPATH": ""}, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert "site-packages" in found.stdout, found.stdout + found.stderr
    assert os.access(app / ".venv" / "bin" / "g4f-server", os.X_OK)
