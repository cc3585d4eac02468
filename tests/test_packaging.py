"""The kernel's distributions as PyPI would get them, built with the project's own build
backend (hatchling, PEP 517) into a temporary folder: the long description speaks to a pip
user, the sdist carries the kernel and its guides only, and a wheel built from that sdist
(as pip does) is the whole kernel."""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build(kind: str, source: Path, out: Path) -> Path:
    """``kind`` ("sdist" or "wheel") of the project in ``source``, as pip's backend call."""
    code = f"import hatchling.build as b; print(b.build_{kind}({str(out)!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("sdist", ROOT, tmp_path_factory.mktemp("sdist"))


def test_the_long_description_is_for_pip_users(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        info = tar.extractfile(tar.getmember("g4f_server-0.1.0/PKG-INFO"))
        assert info is not None
        metadata = email.message_from_bytes(info.read())
    assert metadata["Description-Content-Type"] == "text/markdown"
    text = metadata.get_payload()
    assert isinstance(text, str)
    assert "./dev" not in text  # the repository README's way of running it
    assert 'pip install "g4f-server[all]"' in text
    for extra in ("copilot", "pollinations", "redis", "speed"):
        assert f"[{extra}]" in text
    assert "g4f-server api" in text and "/docs" in text
    assert "docs/" in text  # where the guides are


def test_the_sdist_is_the_kernel_and_its_guides(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    tops = {n.split("/")[0] for n in names}
    assert tops == {"core", "docs", "pyproject.toml", "PKG-INFO", ".gitignore"}
    assert "core/g4f_server/__init__.py" in names and "docs/configuration.md" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for absent in ("plugins", "bench", "tests", "uv.lock", "dev", ".ci"):
        assert absent not in tops


def test_a_wheel_built_from_the_sdist_is_the_whole_kernel(sdist: Path, tmp_path: Path) -> None:
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "src", filter="data")
    wheel = build("wheel", tmp_path / "src" / "g4f_server-0.1.0", tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read("g4f_server-0.1.0.dist-info/METADATA").decode()
    package = ROOT / "core" / "g4f_server"
    expected = {
        "g4f_server/" + p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert expected <= names  # every module and the chat page's files
    assert not [n for n in names if n.startswith(("tests/", "plugins/", "bench/"))]
    assert 'pip install "g4f-server[all]"' in metadata
