"""A provider package made here, installed with pip for real, and found by a running
server through its entry point: no kernel code knows about it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from g4f_server.config import AppConfig
from tests.server_process import free_port, server_process

PLUGIN_CODE = """
from g4f_server import events, hookimpl
from g4f_server.provider import ModelInfo, ProviderInfo


@hookimpl
def provider_info():
    return ProviderInfo(name="Hello", label="Hello Inc", default_model="hello-1")


@hookimpl
async def list_models():
    return [ModelInfo("hello-1", frozenset({"chat"}))]


@hookimpl
async def chat(request):
    yield events.TextDelta("hello from an installed plugin")
"""

PYPROJECT = """
[project]
name = "g4f-server-hello"
version = "0.0.1"
dependencies = []

[project.entry-points.g4f_server]
hello = "g4f_server_hello"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the package into a target folder that only the test server sees."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    (source / "g4f_server_hello").mkdir(parents=True)
    (source / "g4f_server_hello" / "__init__.py").write_text(textwrap.dedent(PLUGIN_CODE))
    (source / "pyproject.toml").write_text(PYPROJECT)
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    assert (target / "g4f_server_hello-0.0.1.dist-info" / "entry_points.txt").exists()
    return target


def _env(site: Path, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env["G4F_DATA_DIR"] = str(tmp_path)
    return env


@pytest.fixture
def server(installed: Path, tmp_path: Path) -> Any:
    with server_process("--load-plugins", "hello", env=_env(installed, tmp_path)) as (_, base):
        yield base


def test_running_server_discovers_installed_plugin(server: str) -> None:
    providers = json.load(urllib.request.urlopen(server + "/v1/providers"))["data"]
    assert [p["id"] for p in providers] == ["Hello"]
    assert providers[0]["working"] is True
    client = openai.OpenAI(base_url=server + "/v1", api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="hello-1", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "hello from an installed plugin"
    assert reply.provider == "Hello"  # type: ignore[attr-defined]


def test_cli_lists_installed_plugin(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "g4f_server", "providers", "--json", "--load-plugins", "hello"],
        env=_env(installed, tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = json.loads(out)
    assert rows[0]["id"] == "Hello" and rows[0]["models"] == ["hello-1"]
    # Without the package on the path the server knows nothing of it.
    out = subprocess.run(
        [sys.executable, "-m", "g4f_server", "providers", "--json", "--load-plugins", "hello"],
        env={**_env(tmp_path, tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == []


def test_effective_config_is_printed_with_secrets_redacted(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**_env(installed, tmp_path), "G4F_API_KEY": "top-secret-value"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "g4f_server", "api", "--port", str(port), "--load-plugins", "hello"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first_line = proc.stderr.readline()
        settings = [proc.stderr.readline() for _ in AppConfig.field_names()]  # one a line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "starting" in first_line
    assert "    api_key = '***'\n" in settings
    assert "top-secret-value" not in first_line + "".join(settings)
    assert f"    port = {port}\n" in settings


def test_cli_lists_models(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "g4f_server", "models", "--load-plugins", "hello"],
        env=_env(installed, tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["Hello", "hello-1", "chat"]
