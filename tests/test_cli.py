"""The ``g4f-server`` command line as a user runs it (subprocesses)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from g4f_server import __version__
from g4f_server.config import env_var


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
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


# --- help ---------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def documented_flags() -> dict[str, tuple[str, str]]:
    """flag -> (setting, environment variable), from the tables of docs/configuration.md."""
    flags: dict[str, tuple[str, str]] = {}
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[2].startswith("`G4F_"):
            continue
        for flag in re.findall(r"`(-[^` ]+)`", cells[1]):  # `--bind HOST:PORT` is not one
            flags[flag] = (cells[0], cells[2].strip("`"))
    return flags


def help_blocks(text: str) -> dict[str, str]:
    """Each option's names (as printed) -> its help text, whitespace collapsed."""
    blocks: dict[str, str] = {}
    names = ""
    for line in text.split("Options:", 1)[1].splitlines():
        if line.startswith("  -"):
            names, _, rest = line.strip().partition("  ")
            blocks[names] = rest
        elif names and line.startswith("      "):
            blocks[names] += " " + line
        elif line.strip():  # the next section
            names = ""
    return {k: " ".join(v.split()) for k, v in blocks.items()}


@pytest.mark.parametrize("command", ["api", "providers", "models"])
def test_help_at_80_columns_names_every_option_and_its_env_var(command: str) -> None:
    from g4f_server.cli import app

    out = run("-m", "g4f_server", command, "--help", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    assert "…" not in out.stdout
    blocks = help_blocks(out.stdout)
    printed = {
        name.strip(",")
        for names in blocks
        for name in names.replace(" / ", " ").split()
        if name.startswith("-")
    }
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    declared = {o for p in click_command.params for o in (*p.opts, *p.secondary_opts)}
    declared.add("--help")  # click adds it when it builds the help
    assert printed == declared  # every name whole: a truncated one would not match

    docs = documented_flags()
    for names, text in blocks.items():
        flag = next(n.strip(",") for n in names.split() if n.startswith("--"))
        shown = re.findall(r"\[env: (\w+)\]", text)
        if flag in ("--help", "--json", "--bind"):  # no setting of their own
            assert shown == [], (flag, text)
            continue
        assert flag in docs, f"{flag} is missing from docs/configuration.md"
        setting, env = docs[flag]
        assert shown == [env], (flag, text)
        assert env_var(setting) == env  # the variable AppConfig.load reads
