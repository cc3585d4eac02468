"""/docs in a real headless Chromium (tests/browser.py), on a server with an API key: the
page asks for the key, the vendored OpenAPI viewer then renders every operation of
/openapi.json with its Markdown, and "try it" calls the server with that key. Nothing is
requested from another host and the page logs no error but the server's expected 401s."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import LiveGateway, chromium
from tests.fake_providers import Scripted

KEY = "sk-docs-test"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("docs-data")
    with LiveGateway([Scripted()], data_dir=data, api_key=KEY) as live:
        yield live.url


@pytest.fixture
def page(gateway: str) -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        elsewhere: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(gateway) else elsewhere.append(r.url))
        page.goto(gateway + "/docs")
        page.wait_for_selector("#key-form:not([hidden])")  # /openapi.json wants the key
        page.fill("#key-input", "wrong")
        page.press("#key-input", "Enter")
        page.wait_for_selector("#key-reason:has-text('refused')")
        page.fill("#key-input", KEY)
        page.press("#key-input", "Enter")
        page.wait_for_selector("rapi-doc >> text=List every model", timeout=20_000)
        assert page.locator("#key-form").is_hidden()
        yield page
        assert not elsewhere, elsewhere
        assert not [p for p in problems if "401" not in p], problems  # 401: asked for it
        context.close()


def _spec(gateway: str) -> dict[str, Any]:
    request = urllib.request.Request(
        gateway + "/openapi.json", headers={"Authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def _anchor(method: str, path: str) -> str:
    """RapiDoc's element id of an operation: get-/api/-provider-/models."""
    return f"{method}-" + path.replace("{", "-").replace("}", "-")


def test_every_operation_is_rendered_with_its_markdown(page: Any, gateway: str) -> None:
    spec = _spec(gateway)
    wanted = {_anchor(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert len(wanted) > 30
    shown = set(
        page.evaluate(
            """() => [...document.querySelector('rapi-doc').shadowRoot
                 .querySelectorAll('.expanded-endpoint-body')].map(e => e.id)"""
        )
    )
    assert wanted == shown
    # The description's Markdown is rendered: a code span becomes <code>.
    chat = page.locator(f'[id="{_anchor("post", "/v1/chat/completions")}"]')
    assert chat.locator("code", has_text="stream: true").count() >= 1
    # Summaries are plain text (OpenAPI's summary is not Markdown): no stray backticks.
    summaries = [op["summary"] for ops in spec["paths"].values() for op in ops.values()]
    assert not [s for s in summaries if "`" in s]


def test_try_it_calls_the_server_with_the_key(page: Any) -> None:
    models = page.locator(f'[id="{_anchor("get", "/v1/models")}"]')
    models.scroll_into_view_if_needed()
    models.locator("button", has_text="TRY").first.click()
    expect_status(models, "200")  # the key typed into the page went with it
    assert models.locator("text=echo-1").count() >= 1  # the model list, from the server
    # Without the key the server's own 401 is shown: the key really is what opened it.
    page.locator("rapi-doc button", has_text="CLEAR").first.click()
    page.evaluate("document.getElementById('reference').removeAllSecurityKeys()")
    models.locator("button", has_text="TRY").first.click()
    expect_status(models, "401")


def expect_status(operation: Any, status: str) -> None:
    operation.locator(f"text=/Response Status.*{status}/").first.wait_for(timeout=10_000)
