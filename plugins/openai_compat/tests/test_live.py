"""Each preset against its real upstream (needs internet and the preset's key).

Skipped unless pytest runs with ``--g4f-live`` (``./dev test --live``) AND the preset's
key variable is set (for local servers: ``<PRESET>_BASE_URL``, e.g. OLLAMA_BASE_URL),
so a user with a key can check that preset and no one else's::

    GROQ_API_KEY=... .venv/bin/python -m pytest plugins/openai_compat --g4f-live -m live -k groq

Shapes are checked, not words: free tiers are slow, rate-limited and change models.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import g4f_server_openai_compat as plugin
from g4f_server import events
from g4f_server.testing import chat_events

pytestmark = pytest.mark.live


def _enabled(key: str) -> bool:
    preset = plugin.PRESETS[key]
    if preset.local:
        return bool(os.environ.get(f"{key.upper()}_BASE_URL"))
    needed = [preset.account_env] if preset.account_env else []
    return any(os.environ.get(v) for v in preset.key_env) and all(os.environ.get(v) for v in needed)


@pytest.mark.parametrize("key", sorted(plugin.PRESETS))
async def test_live_preset(key: str, provider_context: Any) -> None:
    if not _enabled(key):
        pytest.skip(f"set {plugin.PRESETS[key].key_env[0]} (or {key.upper()}_BASE_URL)")
    from g4f_server.requests import ChatRequest

    (provider,) = plugin.providers({"upstreams": {key: {}}})
    ctx = provider_context(timeout=120)
    listed = await provider.list_models(ctx)
    chat_models = [m for m in listed if "chat" in m.capabilities]
    assert chat_models, f"{key}: no chat model listed"
    preferred = [m.id for m in chat_models if m.id in plugin.PRESETS[key].fallback_models]
    model = (preferred or [chat_models[0].id])[0]
    request = ChatRequest.model_validate(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Reply with the single word: pong"}],
            "max_tokens": 64,
        }
    )
    seen = [e async for e in chat_events(provider.chat(request, ctx))]
    text = "".join(e.text for e in seen if isinstance(e, events.TextDelta))
    thought = "".join(e.text for e in seen if isinstance(e, events.ReasoningDelta))
    assert text or thought, f"{key}/{model}: empty answer"
    assert isinstance(seen[-1], events.Finish)


@pytest.mark.parametrize("key", sorted(k for k, p in plugin.PRESETS.items() if p.embeddings))
async def test_live_embeddings(key: str, provider_context: Any) -> None:
    if not _enabled(key):
        pytest.skip(f"set {plugin.PRESETS[key].key_env[0]} (or {key.upper()}_BASE_URL)")
    from g4f_server.requests import EmbeddingRequest

    (provider,) = plugin.providers({"upstreams": {key: {}}})
    ctx = provider_context(timeout=120)
    listed = [m.id for m in await provider.list_models(ctx) if "embeddings" in m.capabilities]
    model = provider.provider_info().default_embedding_model or (listed or [None])[0]
    if model is None:
        pytest.skip(f"{key}: no embedding model listed (pull or load one)")
    request = EmbeddingRequest.model_validate({"model": model, "input": ["one", "two words"]})
    result = await provider.embed(request, ctx)
    assert len(result.vectors) == 2, f"{key}/{model}: {len(result.vectors)} vectors"
    assert len(result.vectors[0]) == len(result.vectors[1]) > 0
    assert result.vectors[0] != result.vectors[1]
