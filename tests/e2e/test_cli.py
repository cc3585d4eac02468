"""The ``g4f-server`` command line as a user runs it (subprocesses)."""

from __future__ import annotations

import json
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

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


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
    declared |= {"-h", "--help"}  # click adds them when it builds the help
    assert printed == declared  # every name whole: a truncated one would not match

    docs = documented_flags()
    for names, text in blocks.items():
        flag = next(n.strip(",") for n in names.split() if n.startswith("--"))
        shown = re.findall(r"\[env: (\w+)\]", text)
        if flag in ("--help", "--json", "--bind", "--check"):  # no setting of their own
            assert shown == [], (flag, text)
            continue
        assert flag in docs, f"{flag} is missing from docs/configuration.md"
        setting, env = docs[flag]
        assert shown == [env], (flag, text)
        assert env_var(setting) == env  # the variable AppConfig.load reads


# --- typer as typer: -h, every setting in the help, typos, the start-up config ------------


@pytest.mark.parametrize(
    "command", [(), ("api",), ("providers",), ("models",), ("keys",), ("keys", "new")]
)
def test_dash_h_is_help_everywhere(command: tuple[str, ...]) -> None:
    short = run("-m", "g4f_server", *command, "-h", env={"COLUMNS": "80"})
    assert short.returncode == 0, short.stderr
    assert short.stdout.startswith("Usage: ") and "-h, --help" in short.stdout
    long = run("-m", "g4f_server", *command, "--help", env={"COLUMNS": "80"})
    assert short.stdout == long.stdout


def test_api_help_names_every_setting() -> None:
    """Each setting is a flag (its variable in the option's help) or listed, variable,
    config-file key and default, after the options."""
    from g4f_server.config import AppConfig

    out = run("-m", "g4f_server", "api", "--help", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    flagged = set(re.findall(r"\[env: (\w+)\]", " ".join(help_blocks(out.stdout).values())))
    listed = dict(re.findall(r"^  (G4F_\w+) +(\w+) \[", out.stdout, re.MULTILINE))
    assert not flagged & listed.keys()
    for name in AppConfig.field_names():
        assert env_var(name) in flagged or listed.get(env_var(name)) == name, name
    assert listed["G4F_STARTUP_TIMEOUT"] == "startup_timeout"
    assert "  G4F_STARTUP_TIMEOUT         startup_timeout [5.0]" in out.stdout


def _start_up_log(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """The log lines of a real ``g4f-server api *args`` (no plugins) until it serves."""
    from tests.server_process import server_process

    log = tmp_path / "server.log"
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "G4F_DATA_DIR": str(tmp_path)}
    with server_process("--load-plugins", "none", *args, env=base | env, log=log):
        pass
    return log.read_text().splitlines()


def test_a_mistyped_variable_is_a_warning_naming_the_closest_setting(tmp_path: Path) -> None:
    lines = _start_up_log(tmp_path, G4F_TIMOUT="5", G4F_XYZZY="1", G4F_JSON_LOGS="1")
    events = [json.loads(line) for line in lines]
    warnings = [e for e in events if e["event"] == "unknown_variable"]
    assert [(w["variable"], w["did_you_mean"]) for w in warnings] == [
        ("G4F_TIMOUT", "G4F_TIMEOUT"),
        ("G4F_XYZZY", None),
    ]
    assert all(w["level"] == "warning" for w in warnings)
    assert events.index(warnings[-1]) < [e["event"] for e in events].index("starting")


def test_the_start_up_config_is_one_setting_a_line(tmp_path: Path) -> None:
    from g4f_server.config import AppConfig

    lines = _start_up_log(tmp_path, "--g4f-api-key", "s3cret", "--priority", "B,A")
    start = next(i for i, line in enumerate(lines) if "event='starting'" in line)
    settings = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        name, _, value = line.strip().partition(" = ")
        settings.append((name, value))
    assert [name for name, _ in settings] == list(AppConfig.field_names())
    assert dict(settings)["api_key"] == "'***'" and "s3cret" not in "\n".join(lines)
    assert dict(settings)["priority"] == "['B', 'A']"
    assert "config=" not in lines[start]  # not the whole dict on the line as well


def test_the_start_up_config_is_one_json_object_in_json_logs(tmp_path: Path) -> None:
    """Also: the api options as typer parses them (`=`, short names, repeated lists,
    --no- flags), converted by AppConfig."""
    lines = _start_up_log(
        tmp_path,
        "--json-logs",
        "--timeout=12.5",
        "-d",
        "--priority",
        "B",
        "--priority",
        "C,A",
        "--no-allow-request-proxy",
        "--data-dir",
        str(tmp_path / "d"),
        G4F_STATE_PASSWORD="hunter2",
    )
    start = next(json.loads(line) for line in lines if '"event":"starting"' in line)
    config = start["config"]
    assert config["timeout"] == 12.5 and config["debug"] is True
    assert config["priority"] == ["B", "C", "A"] and config["allow_request_proxy"] is False
    assert config["data_dir"] == str(tmp_path / "d") and config["state_password"] == "***"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--bogus",), "No such option: --bogus"),
        (("--port",), "Option '--port' requires an argument"),
        (("stray",), "unexpected extra argument(s) (stray)"),
        (("--timeout", "soon"), "timeout (G4F_TIMEOUT) must be a number, got 'soon'"),
    ],
)
def test_a_bad_api_option_is_one_line_and_exit_2(args: tuple[str, ...], error: str) -> None:
    out = run("-m", "g4f_server", "api", *args)
    assert out.returncode == 2
    assert error in out.stderr and "Traceback" not in out.stderr
