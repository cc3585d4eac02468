"""The chat page's model picker in a real headless Chromium, with the three real plugins
(Copilot, Pollinations, openai_compat as Groq) behind their emulators: each provider's
real chat models with their own capabilities, the public names once in their own group
with what they route to, no globs, no non-chat names; and both kinds of choice answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import LiveGateway, chromium
from tests.e2e.test_gui_browser import Watched, choose, last_answer, send, wait_done
from tests.emulated_plugins import emulated_plugins

ROUTED = "Routed by the server"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("picker-data")
    with (
        emulated_plugins() as emu,
        LiveGateway(emu.plugins, gui=True, data_dir=data, **emu.config) as live,
    ):
        yield live.url


@pytest.fixture
def watched(gateway: str) -> Iterator[Watched]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        page = Watched(context.new_page(), gateway)
        yield page
        try:
            page.check()
        finally:
            context.close()


def picker(page: Any) -> dict[str, list[str]]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#model optgroup')]
            .map((g) => [
                g.dataset.provider || g.label,
                [...g.querySelectorAll('option')].map((o) => o.textContent),
            ]))"""
    )


def test_the_picker_lists_real_chat_models_and_the_public_names_once(watched: Watched) -> None:
    page = watched.open()
    groups = picker(page)
    assert list(groups) == ["Pollinations", "Groq", "Copilot", ROUTED]
    ids = {group: [text.split(" ")[0] for text in texts] for group, texts in groups.items()}
    assert ids["Pollinations"] == [
        "openai", "openai-fast", "openai-audio", "deepseek-reasoning", "mistral"
    ]  # fmt: skip
    assert ids["Groq"] == [
        "llama-3.3-70b-versatile", "deep-think-r1", "meta-llama/llama-4-scout-17b-16e-instruct"
    ]  # fmt: skip
    assert groups["Copilot"] == [
        "Copilot (image, vision)", "Think Deeper (reasoning, vision)", "Smart (GPT-5) (vision)",
        "Study (vision)", "Search (vision)",
    ]  # fmt: skip
    everything = [text for texts in groups.values() for text in texts]
    assert not [t for t in everything if "*" in t]  # no glob patterns
    for not_chat in ("whisper-1", "dall-e-3", "gpt-image-1", "flux", "elevenlabs", "rachel"):
        assert not_chat not in [t.split(" ")[0] for t in everything], not_chat
    assert "text-embed-small" not in str(everything)
    # Each model with its own capabilities; Groq's free tier marked.
    assert "deepseek-reasoning (json_schema, reasoning, stop)" in groups["Pollinations"]
    assert "llama-3.3-70b-versatile (json_schema, stop, tools, free)" in groups["Groq"]
    # The public names once, with the providers they route to, in the order tried.
    public = groups[ROUTED]
    assert len(public) == len(set(public))
    assert "gpt-4o → Pollinations, Groq, Copilot" in public
    assert [t.split(" ")[0] for t in public] == ["gpt-4o", "gpt-4o-mini", "gpt-4", "gpt-3.5-turbo"]


def test_a_provider_model_and_a_public_name_both_answer(watched: Watched, gateway: str) -> None:
    page = watched.open()
    choose(page, "Groq", "llama-3.3-70b-versatile")
    assert page.inner_text("#capabilities") == "chat · json_schema · stop · tools"
    send(page, "hello groq")
    wait_done(page)
    answer = last_answer(page)
    assert answer.locator(".content").inner_text() == "Echo: hello groq"  # the emulator's
    assert answer.locator(".meta").inner_text() == "Groq · llama-3.3-70b-versatile"
    choose(page, ROUTED, "gpt-4o")
    shown = page.inner_text("#capabilities")
    assert shown.startswith("Routed by the server to Pollinations: openai, then Groq: ")
    send(page, "hello router")
    wait_done(page)
    answer = last_answer(page)
    assert answer.locator(".error").count() == 0, answer.inner_text()
    # The first route; the emulator names the model it used "openai-emu".
    assert answer.locator(".meta").inner_text().startswith("Pollinations · openai")
