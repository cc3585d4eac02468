"""The kernel's distributions as PyPI would get them, built with the project's own build
backend (hatchling, PEP 517) into a temporary folder: the long description speaks to a pip
user, the sdist carries the kernel and its guides only, and a wheel built from that sdist
(as pip does) is the whole kernel."""

from __future__ import annotations

import email
import email.message
import hashlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
    assert tops == {"core", "docs", "LICENSE", "pyproject.toml", "PKG-INFO", ".gitignore"}
    assert "core/g4f_server/__init__.py" in names and "docs/configuration.md" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for absent in ("plugins", "bench", "tests", "uv.lock", "dev", ".ci"):
        assert absent not in tops


@pytest.fixture(scope="module")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kernel's wheel built from its sdist, as pip does."""
    out = tmp_path_factory.mktemp("wheel")
    with tarfile.open(sdist) as tar:
        tar.extractall(out / "src", filter="data")
    return build("wheel", out / "src" / "g4f_server-0.1.0", out)


def test_a_wheel_built_from_the_sdist_is_the_whole_kernel(wheel: Path) -> None:
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


# --- metadata: licence, URLs, classifiers, typing, extras, entry points ---------------------

# The canonical text, https://www.apache.org/licenses/LICENSE-2.0.txt (unmodified).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
# plugin folder -> its extra (and g4f-server-<extra>, its distribution)
PLUGINS = {"copilot": "copilot", "pollinations": "pollinations", "openai_compat": "openai-compat"}


def wheel_metadata(wheel: Path) -> tuple[email.message.Message, set[str], dict[str, bytes]]:
    """METADATA (parsed), the file names, and the dist-info files' contents of a wheel."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = {n.split(".dist-info/", 1)[1]: zf.read(n) for n in names if ".dist-info/" in n}
    return email.message_from_bytes(info["METADATA"]), names, info


@pytest.fixture(scope="module")
def plugin_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("plugins")
    return {name: build("wheel", ROOT / "plugins" / name, out) for name in PLUGINS}


def test_every_package_is_apache_2_with_the_licence_text(
    wheel: Path, plugin_wheels: dict[str, Path]
) -> None:
    for path in (ROOT / "LICENSE", *(ROOT / "plugins" / n / "LICENSE" for n in PLUGINS)):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == APACHE_2_SHA256, path
    for built in (wheel, *plugin_wheels.values()):
        metadata, _, info = wheel_metadata(built)
        assert metadata["License-Expression"] == "Apache-2.0", built.name
        assert metadata.get_all("License-File") == ["LICENSE"]
        assert hashlib.sha256(info["licenses/LICENSE"]).hexdigest() == APACHE_2_SHA256
    for readme in ("README.md", "core/README.md"):  # and the READMEs say so
        text = (ROOT / readme).read_text()
        assert "Apache-2.0" in text and "any licence" in text and "GPL" not in text


def test_the_metadata_names_urls_classifiers_and_authors(
    wheel: Path, plugin_wheels: dict[str, Path]
) -> None:
    from trove_classifiers import classifiers as known

    for built in (wheel, *plugin_wheels.values()):
        metadata, _, _ = wheel_metadata(built)
        urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
        assert {"Homepage", "Source", "Issues"} <= urls.keys(), built.name
        assert all(u.startswith("https://") for u in urls.values())
        assert metadata["Author"] == "g4f-server contributors"
        classifiers = metadata.get_all("Classifier") or []
        assert set(classifiers) <= known  # no typo PyPI would refuse
        assert "Programming Language :: Python :: 3.11" in classifiers
        assert not [c for c in classifiers if c.startswith("License ::")]  # the expression
    kernel, _, _ = wheel_metadata(wheel)
    assert "Typing :: Typed" in kernel.get_all("Classifier")
    assert "Documentation" in dict(u.split(", ", 1) for u in kernel.get_all("Project-URL"))


def test_the_kernel_is_typed(wheel: Path) -> None:
    """py.typed ships: plugin authors type-check against the kernel's contract."""
    assert (ROOT / "core" / "g4f_server" / "py.typed").is_file()
    _, names, _ = wheel_metadata(wheel)
    assert "g4f_server/py.typed" in names


def test_the_plugin_extras_take_any_release_of_the_same_major_version(wheel: Path) -> None:
    """A plugin fix reaches g4f-server[copilot] users without a kernel release."""
    from packaging.requirements import Requirement

    metadata, _, _ = wheel_metadata(wheel)
    extras: dict[str, list[Requirement]] = {}
    for line in metadata.get_all("Requires-Dist") or []:
        req = Requirement(line)
        for extra in (*PLUGINS.values(), "all"):
            if req.marker and req.marker.evaluate({"extra": extra}):
                extras.setdefault(extra, []).append(req)
    assert {r.name for r in extras["all"]} == {f"g4f-server-{e}" for e in PLUGINS.values()}
    for extra in PLUGINS.values():
        assert [r.name for r in extras[extra]] == [f"g4f-server-{extra}"]
    for req in [r for rs in extras.values() for r in rs]:
        assert all(v in req.specifier for v in ("0.1.0", "0.1.7", "0.9.2")), req
        assert not any(v in req.specifier for v in ("0.0.9", "1.0.0")), req


def test_the_wheel_registers_no_pytest_plugin(wheel: Path) -> None:
    """Its only entry point is the command: the test kit is opt-in (-p g4f_server.testing),
    so installing g4f-server adds nothing to another project's pytest run."""
    _, _, info = wheel_metadata(wheel)
    points = info["entry_points.txt"].decode()
    assert "[console_scripts]" in points and "g4f-server = g4f_server.cli:main" in points
    assert "pytest11" not in points
