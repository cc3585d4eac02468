"""/v1/models as a client's model picker reads it (Open WebUI, LibreChat...), through the
real server with the three real plugins behind their emulators: ids a request can send
as they are, each with its own capabilities, voices inside their speech model."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import LiveGateway
from tests.emulated_plugins import emulated_plugins


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("models-data")
    with emulated_plugins() as emu, LiveGateway(emu.plugins, data_dir=data, **emu.config) as live:
        yield live.url


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture(scope="module")
def listing(gateway: str) -> dict[str, dict[str, Any]]:
    status, body = get(gateway + "/v1/models")
    assert status == 200
    ids = [m["id"] for m in body["data"]]
    assert len(ids) == len(set(ids))  # every id once
    return {m["id"]: m for m in body["data"]}


def test_no_glob_patterns(listing: dict[str, dict[str, Any]]) -> None:
    assert not [name for name in listing if any(c in name for c in "*?[")]
    assert "gpt-4o" in listing and "whisper-1" in listing  # the exact public names stay


def test_voices_are_not_models(gateway: str, listing: dict[str, dict[str, Any]]) -> None:
    assert "rachel" not in listing and "alloy" not in listing
    assert listing["elevenlabs"]["voices"] == ["alloy", "rachel"]
    _, mine = get(gateway + "/api/Pollinations/models")
    ids = [m["id"] for m in mine["data"]]
    assert "rachel" not in ids and "elevenlabs" in ids
    speech = next(m for m in mine["data"] if m["id"] == "elevenlabs")
    assert speech["voices"] == ["alloy", "rachel"]
    _, provider = get(gateway + "/v1/providers/Pollinations")
    assert "rachel" not in provider["speech_models"] and "elevenlabs" in provider["speech_models"]
    # A voice sent as the model still routes (the upstream's rule), and says what it is.
    status, voice = get(gateway + "/v1/models/rachel")
    assert status == 200
    assert (voice["id"], voice["model"], voice["voice"]) == ("rachel", "elevenlabs", "rachel")


def test_each_id_has_its_own_capabilities(listing: dict[str, dict[str, Any]]) -> None:
    assert listing["openai-fast"]["capabilities"] == [
        "chat", "json_schema", "stop", "tools", "vision"
    ]  # fmt: skip
    assert listing["flux"]["capabilities"] == ["image"]
    # Public names of OpenAI's non-chat models are of their kind only...
    assert listing["whisper-1"]["capabilities"] == ["transcription"]
    assert listing["whisper-1"]["kinds"] == ["transcription"]
    assert listing["dall-e-3"]["kinds"] == ["image"]
    assert "chat" not in listing["dall-e-3"]["capabilities"]
    assert listing["gpt-4o-mini-tts"]["capabilities"] == ["speech"]
    # ...and a chat name is not an image, speech or transcription name.
    gpt4o = listing["gpt-4o"]
    assert gpt4o["public"] is True and gpt4o["kinds"] == ["chat"]
    assert not {"image", "speech", "transcription"} & set(gpt4o["capabilities"])
    assert {r["kind"] for r in gpt4o["routes"]} == {"chat"}
    assert [(r["provider"], r["model"]) for r in gpt4o["routes"]] == [
        ("Pollinations", "openai"),
        ("Groq", "llama-3.3-70b-versatile"),
        ("Copilot", "Copilot"),  # Copilot lists gpt-4o as an alias of its model
    ]


def test_an_alias_carries_the_model_it_resolves_to(gateway: str) -> None:
    # Issue 28 item 21: gpt-4.1-nano is Pollinations' alias of openai-fast (and matches
    # the table's gpt-4.1*); it listed image, speech and transcription and had no model.
    status, item = get(gateway + "/v1/models/gpt-4.1-nano")
    assert status == 200
    assert item["id"] == "gpt-4.1-nano" and item["model"] == "openai-fast"
    assert item["capabilities"] == ["chat", "json_schema", "stop", "tools", "vision"]
    assert item["routes"][0] == {"kind": "chat", "provider": "Pollinations", "model": "openai-fast"}
    status, item = get(gateway + "/v1/models/gpt-5-nano")
    assert status == 200 and item["model"] == "openai"
    status, item = get(gateway + "/v1/models/openai")
    assert status == 200 and "model" not in item


def test_free_marks_pass_through(listing: dict[str, dict[str, Any]]) -> None:
    # openai_compat marks every Groq model free ({"free": true} in its extra).
    assert listing["llama-3.3-70b-versatile"]["free"] is True
    assert "free" not in listing["openai"]
    assert "upstream" not in listing["llama-3.3-70b-versatile"]  # other extra stays out


def test_glob_matched_names_still_answer(gateway: str) -> None:
    status, item = get(gateway + "/v1/models/claude-sonnet-4-5-20250929")
    assert status == 200 and item["id"] == "claude-sonnet-4-5-20250929"
    assert item["kinds"] == ["chat"] and item["public"] is True
    assert get(gateway + "/v1/models/no-such-model")[0] == 404
