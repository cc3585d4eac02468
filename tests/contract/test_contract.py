"""The plugin contract: the modules a provider imports, closed on themselves.

A provider package stands on ``g4f_server`` (hookimpl), ``hookspecs``, ``provider``,
``capabilities``, ``requests``, ``events``, ``errors``, ``mediatypes`` and ``upstream``
alone; importing any of them must not load the rest of the gateway (no app, no routes,
no storage), or the contract is not what plugins can rely on.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from g4f_server import capabilities, hookspecs, provider
from g4f_server.upstream import (
    NDJSONLines,
    SSELines,
    parse_duration,
    retry_after,
    retry_delay,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {
    "g4f_server",
    "g4f_server.hookspecs",
    "g4f_server.provider",
    "g4f_server.capabilities",
    "g4f_server.requests",
    "g4f_server.events",
    "g4f_server.errors",
    "g4f_server.mediatypes",
    "g4f_server.upstream",
}


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m for m in json.loads(out.stdout) if m.startswith("g4f_server")}


@pytest.mark.parametrize("module", sorted(CONTRACT - {"g4f_server"}))
def test_a_contract_module_loads_only_the_contract(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    assert loaded <= CONTRACT, sorted(loaded - CONTRACT)


def test_the_old_request_homes_hand_on_the_contract_classes() -> None:
    loaded = _loaded_after("from g4f_server.schemas.chat import ChatRequest, Message")
    assert loaded <= CONTRACT | {"g4f_server.schemas", "g4f_server.schemas.chat"}


# What ``from g4f_server import X`` may take: the package face and contract modules.
FACE = ("hookimpl", "HOOK_API_VERSION", "__version__")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize(
    "package",
    sorted(p for p in (ROOT / "plugins").glob("*/g4f_server_*") if p.is_dir()),
    ids=lambda p: p.name,
)
def test_a_builtin_plugin_imports_only_the_contract(package: Path) -> None:
    allowed = CONTRACT | {f"g4f_server.{name}" for name in FACE}
    outside = {
        f"{source.relative_to(ROOT)}: {name}"
        for source in package.rglob("*.py")
        for name in _imports(source)
        if name.startswith("g4f_server.")
        and not any(name == m or name.startswith(m + ".") for m in allowed - {"g4f_server"})
    }
    assert not outside, sorted(outside)


def test_capabilities_are_named_in_one_table() -> None:
    fields = {f.name for f in dataclasses.fields(provider.ProviderInfo)}
    for cap in capabilities.TABLE:
        if cap.hook is not None:
            assert callable(getattr(hookspecs, cap.hook)), cap.hook
            assert cap.default_model_field in fields, cap.default_model_field
    assert provider.CAPABILITIES is capabilities.CAPABILITIES
    assert hookspecs.SERVICE_HOOKS == (
        "chat",
        "generate_images",
        "create_speech",
        "transcribe",
        "embed",
    )
    with pytest.raises(ValueError, match="unknown capabilities"):
        provider.ModelInfo("m", capabilities=frozenset({"chat", "telepathy"}))


# --- upstream.py: what every provider needs to read an upstream ----------------------


def test_sse_lines_split_anywhere_give_the_same_payloads() -> None:
    stream = (
        b': keep-alive\n\nevent: message\ndata: {"a": 1}\n\n'
        b'data:{"b": 2}\r\n\r\nid: 7\ndata: {"c": "x\\ny"}\n\ndata: [DONE]\n\n'
        b'data: {"after": true}\n\n'
    )
    expected = [b'{"a": 1}', b'{"b": 2}', b'{"c": "x\\ny"}']
    for cut in range(1, len(stream)):
        lines = SSELines()
        got = lines.feed(stream[:cut]) + lines.feed(stream[cut:]) + lines.close()
        assert got == expected, cut
        assert lines.done


def test_sse_lines_without_a_final_newline_keep_the_last_payload() -> None:
    lines = SSELines()
    assert lines.feed(b'data: {"a": 1}\n\ndata: {"b"') == [b'{"a": 1}']
    assert lines.feed(b": 2}") == []
    assert lines.close() == [b'{"b": 2}']
    assert not lines.done  # the stream ended without [DONE]: a provider may call it cut


def test_ndjson_lines_split_across_reads() -> None:
    lines = NDJSONLines()
    assert lines.feed(b'{"a": 1}\n{"b"') == [b'{"a": 1}']
    assert lines.feed(b": 2}\n\n  \n") == [b'{"b": 2}']
    assert lines.feed(b'{"c": 3}') == []
    assert lines.close() == [b'{"c": 3}']


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("9") == 9.0
    assert retry_after("-3") == 0.0
    assert retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    future = retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert future is not None and future > 1e9


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6s", 6.0), ("1m30s", 90.0), ("2.5ms", 0.0025), ("1h2m", 3720.0), ("12", 12.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "1m30", "s"])
def test_parse_duration_refuses_what_is_not_one(text: str) -> None:
    assert parse_duration(text) is None


def test_retry_delay_prefers_retry_after_then_the_spent_reset() -> None:
    assert retry_delay({"Retry-After": "4", "x-ratelimit-reset-requests": "1m"}) == 4.0
    assert retry_delay({"retry-after-ms": "1500"}) == 1.5
    headers = {
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-requests": "10",
        "x-ratelimit-reset-tokens": "7.5s",
        "x-ratelimit-remaining-tokens": "0",
    }
    assert retry_delay(headers) == 7.5
    headers["x-ratelimit-remaining-tokens"] = "5"
    assert retry_delay(headers) == 7.5  # none spent: the longest reset
    assert retry_delay({}) is None


@pytest.mark.parametrize("cut", range(1, 12))
def test_lines_are_whole_however_the_reads_fall(cut: int) -> None:
    """upstream.Lines, which the plugins' own stream readers split with: every line comes
    out once and whole wherever a network read ends; the unterminated end stays for rest()."""
    from g4f_server.upstream import Lines

    body = b"data: a\n\ndata: bb\r\n: c\nlast"
    lines = Lines()
    got = [bytes(line) for line in lines.split(body[:cut])]
    got += [bytes(line) for line in lines.split(body[cut:])]
    assert got == [b"data: a", b"", b"data: bb\r", b": c"]
    assert lines.partial == b"last"
    assert lines.rest() == b"last" and lines.partial == b""
