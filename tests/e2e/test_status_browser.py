"""Provider health in a real headless Chromium (tests/browser.py): the status page asks
for the key, then shows each provider's status and the recent errors; the chat page shows
each provider's status next to its models.

The gateway probes every 0.5 s: Good's probe passes, Bad's fails (down), so what the
pages show comes from the kernel's real health, not from anything the test set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from g4f_server import errors
from g4f_server.provider import ModelInfo
from tests.browser import LiveGateway, chromium
from tests.fake_providers import Probed

KEY = "sk-status-test"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    good = Probed(name="Good", models=[ModelInfo("good-1")])
    bad = Probed(
        name="Bad",
        models=[ModelInfo("bad-1")],
        probe_fail=errors.ProviderError("upstream refused"),
        priority=200,
    )
    data: Path = tmp_path_factory.mktemp("status-data")
    with LiveGateway([good, bad], gui=True, data_dir=data, api_key=KEY, probe_interval=0.5) as live:
        yield live.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as running:
        yield running


def _page(browser: Any, gateway: str) -> tuple[Any, list[str], list[str]]:
    page = browser.new_context().new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("request", lambda request: requests.append(request.url))
    return page, problems, requests


def _key(page: Any) -> None:
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", KEY)
    page.check("#key-remember")
    page.click("#key-form button[type=submit]")


def test_status_page_shows_providers_and_recent_errors(browser: Any, gateway: str) -> None:
    page, problems, requests = _page(browser, gateway)
    page.goto(gateway + "/status")
    _key(page)  # /v1/status is behind the key: the page asks for it
    page.wait_for_selector("html[data-ready='1']")
    # Probes run every 0.5 s; the page refreshes every 10 s: reload until both were seen.
    for _ in range(20):
        good = page.get_attribute("tr[data-provider='Good']", "data-status")
        bad = page.get_attribute("tr[data-provider='Bad']", "data-status")
        if (good, bad) == ("working", "down") and page.locator(
            "#errors td", has_text="Bad"
        ).count():
            break
        page.wait_for_timeout(250)
        page.reload()
        page.wait_for_selector("html[data-ready='1']")
    assert (good, bad) == ("working", "down")
    assert page.inner_text("tr[data-provider='Good'] .badge") == "working"
    assert page.inner_text("tr[data-provider='Bad'] .badge") == "down"
    bad_row = page.inner_text("tr[data-provider='Bad']")
    assert "provider_error" in bad_row and "never" in bad_row  # never succeeded
    errors_table = page.inner_text("#errors")
    assert "Bad" in errors_table and "provider_error" in errors_table and "probe" in errors_table
    assert "Good" not in errors_table
    summary = page.inner_text("#summary")
    assert summary.startswith("Ready: 1 of 2 providers working") and "probed every 0.5 s" in summary
    assert not problems, problems
    assert all(url.startswith(gateway) for url in requests), requests


def test_chat_page_shows_each_providers_status_next_to_its_models(
    browser: Any, gateway: str
) -> None:
    page, problems, requests = _page(browser, gateway)
    page.goto(gateway + "/chat/")
    _key(page)
    page.wait_for_selector("html[data-ready='1']")
    for _ in range(20):  # run alone, this test may come before Bad's first probe
        labels = page.eval_on_selector_all(
            "#model optgroup", "groups => groups.map(g => [g.label, g.dataset.status])"
        )
        if ["Bad (down)", "down"] in labels:
            break
        page.wait_for_timeout(250)
        page.reload()
        page.wait_for_selector("html[data-ready='1']")
    assert ["Good (working)", "working"] in labels and ["Bad (down)", "down"] in labels
    page.select_option("#model", label="bad-1")
    assert page.inner_text("#provider-status") == "Bad: down"
    assert page.get_attribute("#provider-status", "data-status") == "down"
    page.select_option("#model", label="good-1")
    assert page.inner_text("#provider-status") == "Good: working"
    assert not problems, problems
    assert all(url.startswith(gateway) for url in requests), requests
