"""The chat page, finished (issue 30 item 7), in a real headless Chromium: the empty
state and its example prompts, whole conversation titles with their actions, the
settings panel (system prompt and temperature per conversation), and a placeholder that
reads whole on a 360 px phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import LiveGateway, chromium
from tests.e2e.test_gui_browser import Watched, choose, last_answer, send, wait_done
from tests.fake_providers import Scripted
from tests.media_providers import Painter

LONG = (
    "Plan a three-day walking route along the coast from Porto to Viana do Castelo, "
    "with places to sleep and eat"
)


@pytest.fixture(scope="module")
def echo() -> Scripted:
    return Scripted()


@pytest.fixture(scope="module")
def gateway(echo: Scripted, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("page-data")
    with LiveGateway([echo, Painter()], gui=True, data_dir=data) as live:
        yield live.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as running:
        yield running


def _watched(browser: Any, gateway: str, **options: Any) -> Iterator[Watched]:
    context = browser.new_context(**options)
    page = Watched(context.new_page(), gateway)
    yield page
    try:
        page.check()
    finally:
        context.close()


@pytest.fixture
def watched(browser: Any, gateway: str) -> Iterator[Watched]:
    yield from _watched(browser, gateway, viewport={"width": 1100, "height": 800})


@pytest.fixture
def phone(browser: Any, gateway: str) -> Iterator[Watched]:
    yield from _watched(browser, gateway, viewport={"width": 360, "height": 720}, has_touch=True)


def test_empty_state_with_a_hint_and_example_prompts(watched: Watched, echo: Scripted) -> None:
    page = watched.open()
    empty = page.locator("#messages .empty")
    assert empty.is_visible()
    assert "Shift+Enter" in empty.inner_text() and "/image" in empty.inner_text()
    examples = empty.locator("button.example")
    assert examples.count() == 4  # three questions and, with an image model here, a picture
    assert examples.last.inner_text().startswith("/image ")
    choose(page, "Echo", "plain")
    first = examples.first.inner_text()
    examples.first.click()
    wait_done(page)
    assert page.locator("#messages .empty").count() == 0
    assert page.locator("article.user .content").inner_text() == first
    assert last_answer(page).locator(".content").inner_text() == f"echo: {first}"
    assert echo.seen[-1].messages == [{"role": "user", "content": first}]
    page.click("#new-chat")  # a new conversation is empty again
    page.wait_for_selector("#messages .empty")


def test_whole_titles_and_their_actions(watched: Watched) -> None:
    page = watched.open()
    choose(page, "Echo", "plain")
    send(page, LONG + "\nand a second line that is not the title")
    wait_done(page)
    page.click("#new-chat")
    send(page, "short one")
    wait_done(page)
    titles = page.locator("#conversations .title")
    long_title = titles.nth(1)
    text = long_title.inner_text()
    assert text.endswith("…") and LONG.startswith(text[:-1].rstrip())
    assert 60 <= len(text) <= 81  # up to 80 characters, cut at a word
    # Shown whole: wrapped, not cut off with an ellipsis by the sidebar.
    assert long_title.evaluate("b => b.scrollWidth <= b.clientWidth")
    assert long_title.bounding_box()["height"] > 2 * titles.nth(0).bounding_box()["height"] - 4
    # Another conversation's actions appear on hover (hidden, but not gone, before).
    other = page.locator("#conversations li").nth(1)
    rename = other.get_by_role("button", name=f"Rename {text}")
    assert rename.evaluate("b => getComputedStyle(b.parentElement).opacity") == "0"
    other.hover()
    page.wait_for_function(
        "() => getComputedStyle(document.querySelectorAll('#conversations .item-actions')[1])"
        ".opacity === '1'"
    )
    other.get_by_role("button", name=f"Delete {text}").click()
    page.wait_for_function("() => document.querySelectorAll('#conversations li').length === 1")
    assert page.locator("article.user .content").inner_text() == "short one"  # still open


def test_settings_per_conversation(watched: Watched, echo: Scripted) -> None:
    page = watched.open()
    choose(page, "Echo", "plain")
    assert page.locator("#settings").is_hidden()
    page.click("#toggle-settings")
    assert page.get_attribute("#toggle-settings", "aria-expanded") == "true"
    page.fill("#system-prompt", "Answer like a pirate.")
    assert page.inner_text("#temperature-value") == "default"
    page.locator("#temperature").fill("0.3")
    assert page.inner_text("#temperature-value") == "0.3"
    send(page, "hello")
    wait_done(page)
    seen = echo.seen[-1]
    assert seen.messages == [
        {"role": "system", "content": "Answer like a pirate."},
        {"role": "user", "content": "hello"},
    ]
    assert seen.temperature == pytest.approx(0.3)
    # Another conversation has its own (none); back to the first, and after a reload,
    # the first's are there again.
    page.click("#new-chat")
    assert page.input_value("#system-prompt") == ""
    assert page.inner_text("#temperature-value") == "default"
    send(page, "plain hello")
    wait_done(page)
    assert echo.seen[-1].messages == [{"role": "user", "content": "plain hello"}]
    assert echo.seen[-1].temperature is None
    page.locator("#conversations .title", has_text="hello").last.click()
    page.wait_for_selector("article.user:has-text('hello')")
    assert page.input_value("#system-prompt") == "Answer like a pirate."
    page.reload()
    page.wait_for_selector("html[data-ready='1']")
    assert page.input_value("#system-prompt") == "Answer like a pirate."
    assert page.inner_text("#temperature-value") == "0.3"
    page.click("#toggle-settings")
    page.click("#temperature-reset")  # back to the provider's default
    assert page.inner_text("#temperature-value") == "default"


def test_phone_placeholder_reads_whole_and_titles_show_their_actions(phone: Watched) -> None:
    page = phone.open()
    fits = page.evaluate(
        """() => {
            const box = document.getElementById('prompt');
            const style = getComputedStyle(box);
            const ctx = document.createElement('canvas').getContext('2d');
            ctx.font = style.font;
            const room = box.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight);
            return [ctx.measureText(box.placeholder).width, room];
        }"""
    )
    width, room = fits
    assert width <= room, fits  # on one line, nothing cut
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    choose(page, "Echo", "plain")
    send(page, "from a phone")
    wait_done(page)
    page.click("#toggle-sidebar")
    actions = page.locator("#conversations .item-actions").first
    assert actions.evaluate("a => getComputedStyle(a).opacity") == "1"  # no hover on touch
    box = page.locator("#toggle-settings").bounding_box()
    assert box and box["x"] + box["width"] <= 360
