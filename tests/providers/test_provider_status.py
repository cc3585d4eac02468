"""A provider's status (working, degraded on a fallback model list, not working) and the
start-up line that reports it once the server listens; ``g4f-server providers`` and
``models`` count the same models.

The real-process tests run the installed plugins with their upstreams pointed at a
loopback port nobody listens on: Pollinations then serves its built-in model list
(degraded) and Copilot its fixed modes (working). No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from g4f_server import hookimpl
from g4f_server.app import create_app
from g4f_server.config import AppConfig
from g4f_server.provider import FallbackModels, ModelInfo, ProviderContext, ProviderInfo
from g4f_server.providers.context import make_context
from g4f_server.providers.registry import REGISTRY
from tests.server_process import offline_env, server_process


@dataclass(eq=False)
class Listing:
    """A provider whose upstream list may be missing: it then returns its built-in one."""

    name: str = "Listing"
    upstream_up: bool = False

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        if self.upstream_up:
            return [ModelInfo("live-1"), ModelInfo("live-2")]
        return FallbackModels([ModelInfo("builtin-1")])


async def test_a_fallback_list_is_degraded_until_the_live_list_comes(tmp_path: Path) -> None:
    plugin = Listing()
    config = AppConfig(data_dir=tmp_path)
    app = create_app(config, plugins=[plugin], load_entrypoints=False)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("/v1/providers"))
        row = (await (await http.get(url)).json())["data"][0]
        assert (row["status"], row["working"], row["models"]) == ("degraded", True, ["builtin-1"])
        registry = app[REGISTRY]
        assert registry.summary() == "Listing: degraded (fallback list)"

        plugin.upstream_up = True  # the next refresh (every models_ttl) gets the live list
        await registry.refresh_models(lambda e: make_context(app, e), 5)
        row = (await (await http.get(url)).json())["data"][0]
        assert (row["status"], row["models"]) == ("working", ["live-1", "live-2"])
        assert registry.summary() == "Listing: working"


def _env(tmp_path: Path) -> dict[str, str]:
    return offline_env(str(tmp_path))


def _lines(log: Path, event: str, timeout: float = 10) -> list[str]:
    """The log lines of ``event``, waiting for the first one (a worker may announce a
    moment after another one answered /health)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in log.read_text().splitlines() if f"event='{event}'" in line]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _field(line: str, name: str) -> str:
    match = re.search(rf" {name}='([^']*)'", line)
    assert match, f"no {name} in {line}"
    return match.group(1)


def test_startup_line_after_bind_names_url_docs_and_provider_status(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with server_process(env=_env(tmp_path), log=log) as (_, base):
        [line] = _lines(log, "listening")
        assert _field(line, "url") == base
        docs = _field(line, "docs")
        assert docs == base + "/docs"
        with urllib.request.urlopen(docs) as page:  # the page it names is there
            assert page.status == 200 and b"openapi" in page.read().lower()
        providers = _field(line, "providers")
        assert "Pollinations: degraded (fallback list)" in providers
        assert "Copilot: working" in providers
        # The same status in the API.
        rows = json.load(urllib.request.urlopen(base + "/v1/providers"))["data"]
        assert {r["id"]: r["status"] for r in rows} == {
            "Pollinations": "degraded",
            "Copilot": "working",
        }
    text = log.read_text()
    assert text.index("event='listening'") > text.index("event='providers_ready'")


def test_several_workers_announce_once(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    args = ("--workers", "2", "--load-plugins", "none")
    with server_process(*args, env=_env(tmp_path), log=log) as (_, base):
        [line] = _lines(log, "listening")
        assert _field(line, "url") == base and _field(line, "providers") == "none"
        time.sleep(0.5)  # a second worker's line would have come by now
        assert len(_lines(log, "listening")) == 1


def _cli(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "g4f_server", *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout


def test_providers_counts_the_models_that_models_lists(tmp_path: Path) -> None:
    env = _env(tmp_path)
    listed = Counter(line.split()[0] for line in _cli("models", env=env).splitlines())
    rows = {line.split()[0]: line for line in _cli("providers", env=env).splitlines()}
    assert set(rows) == set(listed) == {"Copilot", "Pollinations"}
    models = json.loads(_cli("models", "--json", env=env))
    for name, row in rows.items():
        count = int(row.split()[1])
        assert count == listed[name]  # every kind, as `models` lists them
        # ... and per kind: each count is the number of listed models with that capability
        mine = [m for m in models if m["providers"][0] == name]
        for n, kind in re.findall(r"(\d+) (chat|image|speech|transcription)", row):
            assert int(n) == sum(kind in m["capabilities"] for m in mine), (name, kind)
    assert rows["Pollinations"].endswith("degraded (fallback list)")
    assert rows["Copilot"].endswith("working")
    # Pollinations' fallback has more than chat models: the old chat-only count differed.
    chat_only = {
        r["id"]: len(r["models"]) for r in json.loads(_cli("providers", "--json", env=env))
    }
    assert int(rows["Pollinations"].split()[1]) > chat_only["Pollinations"]
