"""Model lists: live fetch, classification, aliases, fallback, TTL cache."""

from __future__ import annotations

import asyncio
from typing import Any

import g4f_server_pollinations as plugin
from g4f_server.provider import FallbackModels
from g4f_server_pollinations import models
from g4f_server_pollinations.config import settings


def by_id(items: list[Any]) -> dict[str, Any]:
    return {m.id: m for m in items}


async def test_live_lists_are_merged_with_capabilities(emulator, ctx) -> None:
    listed = await plugin.list_models(ctx())
    assert not isinstance(listed, FallbackModels)  # the provider shows as working
    found = by_id(listed)
    assert {"openai", "openai-audio", "flux", "whisper", "scribe"} <= set(found)
    assert found["openai"].capabilities >= {"chat", "vision", "tools"}
    assert "gpt-5-nano" in found["openai"].aliases
    assert found["deepseek-reasoning"].capabilities >= {"chat", "reasoning"}
    assert "tools" not in found["mistral"].capabilities
    # openai-audio is in the text and the audio lists: one entry with both abilities
    assert found["openai-audio"].capabilities >= {"chat", "audio_input", "speech"}
    assert found["flux"].capabilities == {"image"}
    assert found["kontext"].capabilities == {"image", "vision"}
    assert found["whisper"].capabilities == {"transcription"}
    assert found["scribe"].capabilities == {"transcription"}  # by name, no metadata
    assert found["elevenlabs"].capabilities == {"speech"}
    assert found["elevenlabs"].extra["voices"] == ["alloy", "rachel"]
    assert found["openai"].extra["tier"] == "anonymous"
    # the OpenAI SDKs' usual names land on our defaults
    assert {"tts-1", "tts-1-hd"} <= set(found["elevenlabs"].aliases)
    assert "whisper-1" in found["whisper"].aliases
    assert "dall-e-3" in found["flux"].aliases
    assert all(m.owned_by == "Pollinations.AI" for m in found.values())


async def test_anonymous_listing_uses_legacy_image_host(emulator, ctx) -> None:
    await plugin.list_models(ctx())
    assert emulator.last("image_models").host == "legacy-image"
    assert emulator.last("text_models").host == "gen"
    assert all(r.bearer is None for r in emulator.requests)


async def test_keyed_listing_uses_gateway_with_bearer(emulator, ctx) -> None:
    await plugin.list_models(ctx(api_key="sk_test_key"))
    image = emulator.last("image_models")
    assert image.host == "gen" and image.bearer == "sk_test_key"
    found = by_id(await plugin.list_models(ctx(api_key="sk_test_key")))
    # video models serve the images route (the video comes back as a /media URL)
    assert found["seedance"].capabilities == {"image", "video", "vision"}
    assert found["veo"].capabilities == {"image", "video"}
    assert emulator.last("text_models").bearer is None  # public list, no key sent


async def test_fallback_when_upstream_down(monkeypatch, ctx) -> None:
    monkeypatch.setenv("POLLINATIONS_GEN_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("POLLINATIONS_IMAGE_URL", "http://127.0.0.1:9")
    listed = await plugin.list_models(ctx())
    assert isinstance(listed, FallbackModels)  # the kernel shows it degraded
    found = by_id(listed)
    assert {models.DEFAULT_CHAT, models.DEFAULT_IMAGE, models.DEFAULT_SPEECH} <= set(found)
    assert models.DEFAULT_TRANSCRIPTION in found


async def test_one_broken_list_falls_back_alone(emulator, ctx) -> None:
    emulator.fail("audio_models", "bad_models")
    listed = await plugin.list_models(ctx())
    assert isinstance(listed, FallbackModels)  # one kind is not live
    found = by_id(listed)
    assert "deepseek-reasoning" in found  # live text list
    assert "whisper" in found and "elevenlabs" in found  # audio from the fallback


async def test_slow_upstream_does_not_hold_startup(emulator, ctx, monkeypatch) -> None:
    monkeypatch.setenv("POLLINATIONS_MODELS_TIMEOUT", "0.3")
    emulator.stall_seconds = 1.5
    emulator.fail("text_models", "stall", times=1)
    context = ctx()
    started = asyncio.get_running_loop().time()
    first = await plugin.list_models(context)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert "mistral" not in by_id(first) and isinstance(first, FallbackModels)
    await context.state["catalog_task"]  # the fetch finishes in the background
    second = await plugin.list_models(context)
    assert "mistral" in by_id(second) and not isinstance(second, FallbackModels)


async def test_cache_until_ttl(emulator, ctx, monkeypatch) -> None:
    context = ctx()
    await plugin.list_models(context)
    await plugin.list_models(context)
    assert len(emulator.seen("text_models")) == 1
    monkeypatch.setenv("POLLINATIONS_MODELS_TTL", "0")
    settings.cache_clear()
    await plugin.list_models(context)
    assert len(emulator.seen("text_models")) == 2


async def test_failed_refresh_keeps_last_good_list(emulator, ctx, monkeypatch) -> None:
    context = ctx()
    await plugin.list_models(context)
    monkeypatch.setenv("POLLINATIONS_MODELS_TTL", "0")
    settings.cache_clear()
    emulator.fail("text_models", 500)
    assert "mistral" in by_id(await plugin.list_models(context))


def test_provider_info() -> None:
    info = plugin.provider_info()
    assert info.name == "Pollinations" and info.label == "Pollinations.AI"
    assert info.auth == "optional" and "POLLINATIONS_API_KEY" in info.auth_hint
    assert info.default_model and info.default_image_model
    assert info.default_speech_model and info.default_transcription_model


def test_legacy_string_lists_and_openai_shape() -> None:
    assert models._entries(["flux", "turbo"]) == [{"name": "flux"}, {"name": "turbo"}]
    assert models._entries({"data": [{"id": "x"}]})[0]["name"] == "x"


async def test_voices_are_speech_models(emulator, ctx) -> None:
    found = by_id(await plugin.list_models(ctx()))
    assert found["rachel"].capabilities == {"speech"}
    assert found["rachel"].extra == {"voice": "rachel", "model": "elevenlabs"}
    assert "alloy" in found  # any voice of the ElevenLabs model


async def test_fallback_voices_include_elevenlabs_names() -> None:
    catalog = models.fallback_catalog()
    names = {m.id for m in catalog.models()}
    assert {"rachel", "adam", "bella"} <= names
