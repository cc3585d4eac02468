"""Turning upstreams on: presets by name with their key variables and <PRESET>_BASE_URL,
config-file tables, what refuses to start (exit 2 from the real CLI), and the resolved
configuration itself (request quirks, rate-limit headers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import g4f_server_openai_compat as plugin
from g4f_server.config import AppConfig
from g4f_server_openai_compat import chat, failures
from g4f_server_openai_compat.presets import PRESETS
from g4f_server_openai_compat.upstreams import resolve, resolve_all

MODEL = "llama-3.3-70b-versatile"


async def ask(base: str, model: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": "ping"}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return (await resp.json())["choices"][0]["message"]["content"]


async def test_a_preset_from_the_environment(
    emulator: Any, start_gateway: Any, tmp_path: Path
) -> None:
    """G4F_UPSTREAMS=groq with GROQ_API_KEY and GROQ_BASE_URL (set by the fixture)."""
    config = AppConfig.load(environ={"G4F_UPSTREAMS": "groq"}, data_dir=str(tmp_path))
    assert config.upstreams == {"groq": {}}
    base = await start_gateway(plugins=[plugin], data_dir=str(tmp_path), upstreams=config.upstreams)
    assert await ask(base, MODEL) == "Echo: ping"
    assert emulator.calls("models")  # the live list was fetched


async def test_an_upstream_from_a_config_file(
    make_emulator: Any, start_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emulator(key="file-key")
    monkeypatch.setenv("MY_LOCAL_KEY", "file-key")
    path = tmp_path / "g4f.toml"
    path.write_text(
        f"""
[upstreams.home]
base_url = "{emu.base}"
api_key_env = "MY_LOCAL_KEY"
priority = 5
headers = {{ "X-Tenant" = "me" }}

[upstreams.home.models]
fast = "llama-3.3-70b-versatile"
thinker = "deep-think-r1"
"""
    )
    config = AppConfig.load(environ={}, config=str(path))
    base = await start_gateway(plugins=[plugin], data_dir=str(tmp_path), upstreams=config.upstreams)
    assert await ask(base, "fast") == "Echo: ping"  # an alias from the table
    assert emu.last("chat").json["model"] == MODEL
    assert emu.last("chat").headers["X-Tenant"] == "me"
    async with aiohttp.ClientSession() as http, http.get(base + "/api/home/models") as resp:
        listed = [m["id"] for m in (await resp.json())["data"]]
    assert sorted(listed) == ["deep-think-r1", MODEL]  # only the table's models


def test_nothing_turns_on_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-a-client-setup")
    monkeypatch.setenv("GROQ_API_KEY", "gsk")
    assert plugin.providers({"upstreams": {}}) == []
    assert plugin.providers({}) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"gemini": {}}, "set GEMINI_API_KEY"),
        ({"openrouter": {}}, "set OPENROUTER_API_KEY"),
        ({"cloudflare": {"api_key": "k"}}, "set CLOUDFLARE_ACCOUNT_ID"),
        ({"mine": {}}, "give it a base_url"),
        ({"mine": {"base_url": "ftp://x"}}, "http(s) URL"),
        ({"mine": {"base_url": "http://x", "api_key_env": "NOPE_KEY"}}, "set NOPE_KEY"),
        ({"groq": {"api_key": "k", "modles": ["x"]}}, "unknown key(s) modles"),
        ({"x": {"preset": "grok", "api_key": "k"}}, "unknown preset 'grok'"),
        ({"groq": {"api_key": "k", "models": 5}}, "models must be"),
    ],
)
def test_what_refuses_to_start(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_all(table, environ={})


def test_local_servers_need_no_key() -> None:
    for name in ("ollama", "lmstudio", "llamacpp", "vllm"):
        up = resolve(name, {}, {})
        assert up.api_key is None and up.preset.local
    assert resolve("ollama", {}, {}).base_url == "http://localhost:11434/v1"
    assert resolve("vllm", {}, {"VLLM_API_KEY": "v"}).api_key == "v"


def test_urls_accounts_and_names() -> None:
    cf = resolve("cloudflare", {}, {"CLOUDFLARE_API_TOKEN": "t", "CLOUDFLARE_ACCOUNT_ID": "abc"})
    assert cf.base_url == "https://api.cloudflare.com/client/v4/accounts/abc/ai/v1"
    assert cf.models_url is None  # no OpenAI-style list: the preset's list is served
    gh = resolve("github", {}, {"GITHUB_TOKEN": "t"})
    assert gh.models_url == "https://models.github.ai/catalog/models"
    assert gh.provider == "GitHubModels"
    assert resolve("groq", {}, {"GROQ_API_KEY": "k"}).provider == "Groq"
    assert resolve("fast", {"preset": "groq", "api_key": "k"}, {}).provider == "fast"
    every = {name: {"api_key": "k", "account_id": "a"} for name in PRESETS}
    assert len(resolve_all(every, environ={})) == len(PRESETS)


def test_request_quirks_per_preset() -> None:
    from g4f_server.requests import ChatRequest

    request = ChatRequest.model_validate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi", "name": "ann"}],
            "seed": 3,
            "max_completion_tokens": 9,
            "user": "u1",
            "presence_penalty": 0.5,
            "parallel_tool_calls": False,
            "provider": "x",
            "stream": True,
        }
    )
    mistral = chat.request_body(resolve("mistral", {"api_key": "k"}, {}), request)
    assert mistral["random_seed"] == 3 and "seed" not in mistral
    assert mistral["max_tokens"] == 9 and "max_completion_tokens" not in mistral
    assert "user" not in mistral and "stream_options" not in mistral
    cerebras = chat.request_body(resolve("cerebras", {"api_key": "k"}, {}), request)
    assert "presence_penalty" not in cerebras and "parallel_tool_calls" not in cerebras
    assert cerebras["stream_options"] == {"include_usage": True}
    groq = chat.request_body(resolve("groq", {"api_key": "k"}, {}), request)
    assert groq["messages"] == [{"role": "user", "content": "hi"}] and groq["seed"] == 3
    ollama = chat.request_body(resolve("ollama", {}, {}), request)
    assert ollama["max_tokens"] == 9
    for body in (mistral, cerebras, groq, ollama):
        assert body["stream"] is True and "provider" not in body
    # A client that does not stream: one JSON completion asked for, no usage chunk.
    groq_up = resolve("groq", {"api_key": "k"}, {})
    plain = chat.request_body(groq_up, request.model_copy(update={"stream": False}))
    assert plain["stream"] is False and "stream_options" not in plain


def test_rate_limit_headers_per_preset() -> None:
    cerebras = resolve("cerebras", {"api_key": "k"}, {})
    headers = {
        "x-ratelimit-remaining-requests-day": "0",
        "x-ratelimit-reset-requests-day": "33011.38",
        "x-ratelimit-remaining-tokens-minute": "5",
        "x-ratelimit-reset-tokens-minute": "11.38",
    }
    assert failures.rate_limit_delay(cerebras, headers) == pytest.approx(33011.38)
    groq = resolve("groq", {"api_key": "k"}, {})
    assert failures.rate_limit_delay(groq, {"Retry-After": "3"}) == 3.0
    assert failures.rate_limit_delay(groq, {}) is None


def test_error_bodies_of_every_shape() -> None:
    assert failures.message_of(b'{"error": {"message": "bad key", "code": 401}}') == "bad key"
    assert failures.message_of(b'[{"error": {"code": 400, "message": "gemini says"}}]') == (
        "gemini says"
    )
    assert failures.message_of(b'{"error": "plain"}') == "plain"
    assert failures.message_of(b'{"detail": "vllm says"}') == "vllm says"
    assert failures.message_of(b"<html>oops</html>") == "<html>oops</html>"


def test_the_cli_refuses_a_preset_without_its_key(tmp_path: Path) -> None:
    """``g4f-server api --upstreams groq`` without GROQ_API_KEY: exit 2, one message."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    env["G4F_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.run(
        [sys.executable, "-m", "g4f_server", "api", "--port", "9", "--upstreams", "groq"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "GROQ_API_KEY" in output and output.count("GROQ_API_KEY") <= 2
    assert "Traceback" not in output
