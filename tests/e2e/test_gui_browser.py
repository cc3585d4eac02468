"""The chat page in a real headless Chromium against a running gateway (tests/browser.py).

One browser for the module, one gateway with every test provider behind it; each test
opens a fresh browser context. Every test also checks that the page logged no console
error and threw no exception, and that it requested nothing from another host.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from g4f_server import errors, events, hookimpl
from g4f_server.controls import limits
from g4f_server.provider import ModelInfo, ProviderContext
from g4f_server.requests import ChatRequest
from g4f_server.testing import png_bytes
from tests.browser import LiveGateway, chromium
from tests.fake_providers import Endless, Scripted
from tests.media_providers import Painter, Speaker

HOSTILE = """Here is **bold** text and a list:

- one
- two

| col a | col b |
| --- | --- |
| 1 | 2 |

```python
print("hi")
```

<img src=x onerror="window.__pwned='img'">

<script>window.__pwned='script'</script>

<svg onload="window.__pwned='svg'"><circle r="3"/></svg>

<iframe src="javascript:window.__pwned='iframe'"></iframe>

<a href="javascript:window.__pwned='raw-link'">raw link</a>

[md link](javascript:window.__pwned='md-link')

<p style="color:red" onclick="window.__pwned='click'">styled</p>

Inline <b onmouseover="window.__pwned='inline'">html</b> and a break<br>here.

![tracker](https://tracker.invalid/pixel.png)

[a real link](https://example.invalid/docs)
"""


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Hostile(Scripted):
    """Answers with Markdown full of script injections, and cites a source."""

    name: str = "Hostile"
    models: list[ModelInfo] = field(default_factory=lambda: [ModelInfo("hostile-1")])

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatEvent]:
        for i in range(0, len(HOSTILE), 40):
            yield events.TextDelta(HOSTILE[i : i + 40])
        yield events.Citation("https://example.invalid/source", "The source")
        yield events.Citation("javascript:window.__pwned='citation'", "Bad source")
        yield events.Finish("stop")


class Providers:
    def __init__(self) -> None:
        self.echo = Scripted()
        self.endless = Endless(models=[ModelInfo("endless-1")])
        self.hostile = Hostile()
        self.broken = Scripted(
            name="Broken",
            models=[ModelInfo("broken-1")],
            fail=errors.ProviderError("upstream refused: daily quota exhausted"),
        )
        self.flaky = Scripted(name="Flaky", models=[ModelInfo("flaky-1")], fail_after=2)
        self.painter = Painter()
        self.speaker = Speaker()

    def all(self) -> list[object]:
        return list(vars(self).values())


@pytest.fixture(scope="module")
def providers() -> Providers:
    return Providers()


@pytest.fixture(scope="module")
def gateway(providers: Providers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("gui-data")
    with LiveGateway(providers.all(), gui=True, data_dir=data) as live:
        yield live.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as running:
        yield running


class Watched:
    """A page with everything it logged and requested recorded."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.allowed: list[str] = []  # console errors a test expects (regexes)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning") and not any(
            re.search(p, message.text) for p in self.allowed
        ):
            self.problems.append(f"console {message.type}: {message.text}")

    def open(self, path: str = "/") -> Any:
        self.page.goto(self.base + path)
        self.page.wait_for_selector("html[data-ready='1']")
        return self.page

    def check(self) -> None:
        foreign = [u for u in self.requests if not u.startswith((self.base, "data:", "blob:"))]
        assert not foreign, f"requests to other hosts: {foreign}"
        assert not self.problems, self.problems


@pytest.fixture
def watched(browser: Any, gateway: str) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = Watched(context.new_page(), gateway)
    yield page
    try:
        page.check()
    finally:
        context.close()


def choose(page: Any, provider: str, model: str) -> None:
    """Pick ``model`` of ``provider`` in the model picker (options are grouped)."""
    value = page.evaluate(
        """([provider, model]) => {
            const group = [...document.querySelectorAll('#model optgroup')]
                .find((g) => (g.dataset.provider || g.label) === provider);
            const option = [...group.querySelectorAll('option')]
                .find((o) => o.textContent.split(' ')[0] === model);
            return option.value;
        }""",
        [provider, model],
    )
    page.select_option("#model", value)


def send(page: Any, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def last_answer(page: Any) -> Any:
    return page.locator("article.assistant").last


def wait_done(page: Any) -> None:
    page.wait_for_selector("#send:not([hidden])")


def test_type_send_and_see_the_streamed_answer(watched: Watched, providers: Providers) -> None:
    page = watched.open()
    groups = page.eval_on_selector_all("#model optgroup", "gs => gs.map((g) => g.dataset.provider)")
    assert {"Echo", "Hostile", "Broken", "Flaky", "Endless"} <= set(groups)
    choose(page, "Echo", "echo-1")
    assert "vision" in page.inner_text("#capabilities")
    page.fill("#prompt", "hello")
    page.press("#prompt", "Shift+Enter")
    page.locator("#prompt").press_sequentially("second line of the page")
    page.press("#prompt", "Enter")
    wait_done(page)
    answer = last_answer(page)
    assert answer.locator(".content").inner_text() == "echo: hello\nsecond line of the page"
    assert answer.locator(".meta").inner_text() == "Echo · echo-1"
    assert page.locator("article.user .content").inner_text() == "hello\nsecond line of the page"
    assert providers.echo.seen[-1].messages[-1]["content"] == "hello\nsecond line of the page"
    assert page.eval_on_selector("#prompt", "p => p.value") == ""


def test_reasoning_is_shown_collapsed_above_the_answer(watched: Watched) -> None:
    page = watched.open()
    choose(page, "Echo", "thinker")
    send(page, "ponder")
    wait_done(page)
    details = last_answer(page).locator("details.reasoning")
    assert details.get_attribute("open") is None
    assert "Let me think." in (details.text_content() or "")
    assert details.inner_text() == "Reasoning"  # collapsed: only the summary shows
    assert last_answer(page).locator(".content").inner_text() == "echo: ponder"


def test_stop_mid_answer_aborts_the_request(watched: Watched, providers: Providers) -> None:
    page = watched.open()
    choose(page, "Endless", "endless-1")
    providers.endless.closed.clear()
    send(page, "go on forever")
    page.wait_for_selector("article.assistant .content:has-text('tick 3')")
    page.click("#stop")
    wait_done(page)
    answer = last_answer(page)
    assert answer.locator(".stopped").inner_text() == "Stopped."
    assert "tick" in answer.locator(".content").inner_text()
    # The server saw the client go and closed the provider's stream.
    for _ in range(100):
        if providers.endless.closed.is_set():
            break
        page.wait_for_timeout(50)
    assert providers.endless.closed.is_set()


def test_reload_reopens_the_conversation(watched: Watched) -> None:
    page = watched.open()
    choose(page, "Echo", "plain")
    send(page, "remember me")
    wait_done(page)
    page.reload()
    page.wait_for_selector("html[data-ready='1']")
    assert page.locator("article.user .content").inner_text() == "remember me"
    assert last_answer(page).locator(".content").inner_text() == "echo: remember me"
    assert page.locator("#conversations li[aria-current='true'] .title").inner_text() == (
        "remember me"
    )
    # The model choice survives the reload too.
    assert page.eval_on_selector("#model", "s => s.selectedOptions[0].textContent") == "plain"


def test_conversations_switch_rename_delete_and_export(watched: Watched) -> None:
    page = watched.open()
    choose(page, "Echo", "plain")
    send(page, "first chat")
    wait_done(page)
    page.click("#new-chat")
    send(page, "second chat")
    wait_done(page)
    titles = page.locator("#conversations .title")
    assert titles.all_inner_texts() == ["second chat", "first chat"]
    titles.nth(1).click()
    page.wait_for_selector("article.user:has-text('first chat')")
    page.get_by_role("button", name="Rename first chat").click()
    page.fill("#conversations input", "Renamed")
    page.press("#conversations input", "Enter")
    page.wait_for_selector("#conversations .title:has-text('Renamed')")
    with page.expect_download() as download:
        page.click("#export-md")
    text = Path(download.value.path()).read_text()
    assert text.startswith("# Renamed") and "echo: first chat" in text
    with page.expect_download() as download:
        page.click("#export-json")
    assert '"content": "first chat"' in Path(download.value.path()).read_text()
    page.get_by_role("button", name="Delete Renamed").click()
    page.wait_for_function("() => document.querySelectorAll('#conversations li').length === 1")
    assert page.locator("article").count() == 0


def test_edit_resend_and_regenerate(watched: Watched, providers: Providers) -> None:
    page = watched.open()
    choose(page, "Echo", "plain")
    send(page, "draft")
    wait_done(page)
    page.get_by_role("button", name="Edit and resend").click()
    page.fill("article.user textarea", "final words")
    page.press("article.user textarea", "Enter")
    wait_done(page)
    assert page.locator("article").count() == 2
    assert last_answer(page).locator(".content").inner_text() == "echo: final words"
    before = len(providers.echo.seen)
    page.get_by_role("button", name="Regenerate").click()
    wait_done(page)
    assert len(providers.echo.seen) == before + 1
    assert page.locator("article").count() == 2
    assert providers.echo.seen[-1].messages == [{"role": "user", "content": "final words"}]


def test_hostile_answer_runs_nothing(watched: Watched) -> None:
    page = watched.open()
    choose(page, "Hostile", "hostile-1")
    # The user's own text is shown as text, never as HTML.
    send(page, "<img src=y onerror=\"window.__pwned='user'\">")
    wait_done(page)
    answer = last_answer(page)
    content = answer.locator(".content")
    # The Markdown is rendered: a list, a table, a code block with its copy button.
    assert content.locator("li").count() == 2
    assert content.locator("table td").first.inner_text() == "1"
    assert content.locator("pre code").inner_text().strip() == 'print("hi")'
    assert content.locator("pre button.copy").count() == 1
    # The injections are gone, not run.
    for link in answer.locator("a:not([href])").all():
        link.click()  # the links whose javascript: URL was removed
    content.click()  # where the onclick paragraph would have been
    page.wait_for_timeout(100)
    assert page.evaluate("window.__pwned") is None
    dangerous = page.evaluate(
        """() => [...document.querySelectorAll('#messages *')].flatMap((node) =>
            [...node.attributes]
              .filter((a) => a.name.startsWith('on') || a.name === 'style' ||
                             /^\\s*javascript:/i.test(a.value))
              .map((a) => node.tagName + ' ' + a.name + '=' + a.value))"""
    )
    assert dangerous == []
    assert page.locator("#messages script, #messages iframe, #messages svg").count() == 0
    assert page.locator("article.user .content").inner_text().startswith("<img src=y")
    # Raw HTML in an answer is shown as text; only <br> is kept.
    text = content.inner_text()
    assert "<script>window.__pwned='script'</script>" in text
    assert "<b onmouseover=" in text
    assert content.locator("br").count() == 1
    assert content.get_by_text("md link").get_attribute("href") is None
    # Images from elsewhere become links (nothing is fetched from another host).
    assert content.locator("img").count() == 0
    assert content.get_by_text("[image: tracker]").get_attribute("href") == (
        "https://tracker.invalid/pixel.png"
    )
    real = content.get_by_role("link", name="a real link")
    assert real.get_attribute("target") == "_blank"
    assert "noopener" in (real.get_attribute("rel") or "")
    citations = answer.locator("ol.citations li")
    assert citations.nth(0).locator("a").get_attribute("href") == "https://example.invalid/source"
    assert citations.nth(1).locator("a").count() == 0  # not a web link: shown as text


def test_provider_failure_mid_stream_shows_its_reason(watched: Watched) -> None:
    page = watched.open()
    choose(page, "Flaky", "flaky-1")
    send(page, "one two three four")
    wait_done(page)
    answer = last_answer(page)
    assert answer.locator(".error").inner_text() == "upstream dropped the connection"
    assert answer.locator(".content").inner_text() == "echo: one"


def test_provider_failure_before_the_answer_shows_its_reason(watched: Watched) -> None:
    # The 502 itself is logged by Chromium as a failed resource load; nothing else may be.
    watched.allowed.append(r"status of 502")
    page = watched.open()
    choose(page, "Broken", "broken-1")
    send(page, "hi")
    wait_done(page)
    message = last_answer(page).locator(".error").inner_text()
    assert "daily quota exhausted" in message
    assert "Traceback" not in message


def test_image_command_shows_a_picture(watched: Watched, providers: Providers) -> None:
    page = watched.open()
    send(page, "/image a red square")
    wait_done(page)
    image = last_answer(page).locator(".content img")
    image.wait_for()
    assert image.get_attribute("alt") == "a red square"
    assert image.get_attribute("src").startswith(watched.base + "/media/")
    page.wait_for_function(
        "() => { const i = document.querySelector('article.assistant img'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    assert providers.painter.seen[-1].prompt == "a red square"
    assert last_answer(page).locator(".meta").inner_text() == "Painter · painter-img"


def test_image_upload_to_a_vision_model(
    watched: Watched, providers: Providers, tmp_path: Path
) -> None:
    picture = tmp_path / "dot.png"
    picture.write_bytes(png_bytes(3, 3))
    page = watched.open()
    choose(page, "Echo", "echo-1")
    page.set_input_files("#file", str(picture))
    page.wait_for_selector("#attachments img")
    # Drag and drop works as well: a second image dropped on the chat.
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
            document.getElementById('main').dispatchEvent(
                new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        base64.b64encode(png_bytes(2, 2)).decode(),
    )
    page.wait_for_function("() => document.querySelectorAll('#attachments img').length === 2")
    # And pasted into the message box: a third.
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], 'pasted.png', {type: 'image/png'}));
            document.getElementById('prompt').dispatchEvent(
                new ClipboardEvent('paste', {clipboardData: data, cancelable: true}));
        }""",
        base64.b64encode(png_bytes(4, 4)).decode(),
    )
    page.wait_for_function("() => document.querySelectorAll('#attachments img').length === 3")
    # One is removed again before sending.
    page.get_by_role("button", name="Remove pasted.png").click()
    send(page, "what is this")
    wait_done(page)
    assert page.locator("article.user .thumbs img").count() == 2
    assert page.locator("#attachments img").count() == 0
    content = providers.echo.seen[-1].messages[-1]["content"]
    assert content[0] == {"type": "text", "text": "what is this"}
    urls = [part["image_url"]["url"] for part in content[1:]]
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
    assert base64.b64decode(urls[0].split(",", 1)[1]) == picture.read_bytes()


def test_read_aloud(watched: Watched, providers: Providers) -> None:
    page = watched.open()
    choose(page, "Echo", "plain")
    send(page, "say this")
    wait_done(page)
    with page.expect_response("**/v1/audio/speech") as response:
        last_answer(page).get_by_role("button", name="Read aloud").click()
    assert response.value.status == 200
    assert providers.speaker.seen[-1].input == "echo: say this"
    page.wait_for_selector("button:has-text('Stop reading'), button:has-text('Read aloud')")


def test_narrow_phone_viewport(browser: Any, gateway: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 720}, color_scheme="dark")
    watched = Watched(context.new_page(), gateway)
    try:
        page = watched.open()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert not page.locator("#sidebar").is_visible() or (
            page.locator("#sidebar").bounding_box()["x"] < 0
        )
        box = page.locator("#send").bounding_box()
        assert box and box["x"] + box["width"] <= 360
        choose(page, "Echo", "plain")
        send(page, "a rather long message " * 8)
        wait_done(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.click("#toggle-sidebar")
        page.wait_for_function(
            "() => document.getElementById('sidebar').getBoundingClientRect().x >= 0"
        )
        assert page.get_attribute("#toggle-sidebar", "aria-expanded") == "true"
        # The dark theme follows the system.
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(22, 24, 28)"
        watched.check()
    finally:
        context.close()


def test_key_prompt_when_the_server_needs_one(
    browser: Any, providers: Providers, tmp_path: Path
) -> None:
    with LiveGateway([providers.echo], gui=True, api_key="s3cret", data_dir=tmp_path) as live:
        context = browser.new_context()
        watched = Watched(context.new_page(), live.url)
        try:
            page = watched.page
            page.goto(live.url + "/")
            page.wait_for_selector("#key-dialog[open]")
            page.fill("#key-input", "s3cret")
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("html[data-ready='1']")
            send(page, "with a key")
            wait_done(page)
            assert last_answer(page).locator(".content").inner_text() == "echo: with a key"
            # Not remembered: a reload asks again; remembered: it does not.
            page.reload()
            page.wait_for_selector("#key-dialog[open]")
            page.fill("#key-input", "s3cret")
            page.check("#key-remember")
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("html[data-ready='1']")
            page.reload()
            page.wait_for_selector("html[data-ready='1']")
            assert not page.locator("#key-dialog").is_visible()
            assert page.evaluate("localStorage.getItem('g4f.apiKey')") == "s3cret"
            watched.check()
        finally:
            context.close()


def test_first_paint(watched: Watched) -> None:
    """The page paints (and is ready) with no request but to this server."""
    page = watched.open()
    paint = page.evaluate("performance.getEntriesByType('paint').map((e) => [e.name, e.startTime])")
    assert dict(paint).get("first-contentful-paint") is not None
    assert page.is_visible("#prompt")
    assert page.evaluate("document.activeElement.id") == "prompt"


def test_demo_banner_and_limit_message(browser: Any, providers: Providers, tmp_path: Path) -> None:
    # Three requests a minute: the page load's model list and provider statuses, then one
    # question.
    with LiveGateway([providers.echo], demo=True, demo_rpm=3, data_dir=tmp_path) as live:
        # A frozen clock: the minute windows are aligned to the clock, and a boundary between
        # the page load and the second question would reset the count.
        assert live.app is not None
        live.app[limits.LIMITS].limiter.clock = lambda: 30.0
        context = browser.new_context()
        watched = Watched(context.new_page(), live.url)
        watched.allowed.append(r"status of 429")  # Chromium logs the refused request
        try:
            page = watched.open()
            assert page.is_visible("#demo-banner")
            assert "Public demo" in page.inner_text("#demo-banner")
            send(page, "first")
            wait_done(page)
            assert last_answer(page).locator(".content").inner_text() == "echo: first"
            send(page, "second")
            wait_done(page)
            message = last_answer(page).locator(".error").inner_text()
            assert message.startswith("Rate limit reached for 127.0.0.1: 3 requests per minute.")
            watched.check()
        finally:
            context.close()
