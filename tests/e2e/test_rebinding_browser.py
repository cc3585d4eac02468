"""The CORS and DNS-rebinding guards in a real Chromium (issue 28 item 1).

A keyless gateway on 127.0.0.1 holds the user's uploaded logins. Chromium maps the
attacker's name ``127.attacker.test`` to 127.0.0.1 (``--host-resolver-rules``, so no DNS
and no traffic leaves the machine), as an attacker's DNS would. Two attacks:

- cross-origin: a page served from ``http://127.attacker.test:<its port>`` calls the
  gateway at ``http://127.0.0.1:<port>``; its origin must not be taken for loopback;
- rebinding: the page's own name is re-pointed at the gateway, so its calls are
  same-origin and carry the attacker's name only in ``Host``.

Either way the page must neither read ``/v1/cookies`` nor get a chat to a provider.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, LiveGateway, require_chromium
from tests.fake_providers import Scripted

ATTACKER = "127.attacker.test"
PAGE = b"<!doctype html><title>cute cats</title><p>nothing to see"
# What the attacker's script does: read the logins, then drive a chat with a "simple"
# request (text/plain needs no preflight). Each step reports what the page could see.
ATTACK = """async (base) => {
  const out = {};
  try {
    const r = await fetch(base + '/v1/cookies');
    out.cookies = r.status + ' ' + (await r.text());
  } catch (e) { out.cookies = 'blocked: ' + e; }
  try {
    const r = await fetch(base + '/v1/chat/completions', {
      method: 'POST', headers: {'Content-Type': 'text/plain'},
      body: JSON.stringify({model: 'echo-1', messages: [{role: 'user', content: 'pwned'}]}),
    });
    out.chat = r.status + ' ' + (await r.text());
  } catch (e) { out.chat = 'blocked: ' + e; }
  return out;
}"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server calls it by this name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def attacker_site() -> Iterator[int]:
    """The attacker's web server, on a loopback port (reached by its name)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Chromium's own Private/Local Network Access checks are off: they would block the
    # rebound page (served "from the internet") on their own, and the gateway must not
    # rely on them (other browsers, older versions, and the cross-origin page is local).
    args = [
        *CHROMIUM_ARGS,
        f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1",
        "--disable-features=PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests,LocalNetworkAccessChecks",
    ]
    with sync_playwright() as pw:
        running = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield running
        finally:
            running.close()


def _refused(result: str) -> bool:
    """Refused by the gateway (readable 403, same origin) or by the browser (CORS)."""
    return result.startswith(("403 ", "blocked: "))


def test_a_foreign_origin_named_like_loopback_reads_nothing(
    browser: Any, attacker_site: int, tmp_path: Any
) -> None:
    victim = Scripted()
    with LiveGateway([victim], data_dir=tmp_path) as gateway:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"http://{ATTACKER}:{attacker_site}/")
            assert page.title() == "cute cats"  # the name did resolve, to our loopback
            out = page.evaluate(ATTACK, gateway.url)
        finally:
            context.close()
    assert out["cookies"].startswith("blocked: "), out  # no CORS grant: nothing read
    assert _refused(out["chat"]), out
    assert not victim.seen  # the chat never reached a provider


def test_a_rebound_name_is_refused_by_the_host_guard(browser: Any, tmp_path: Any) -> None:
    victim = Scripted()
    with LiveGateway([victim], data_dir=tmp_path) as gateway:
        port = gateway.url.rsplit(":", 1)[1]
        origin = f"http://{ATTACKER}:{port}"
        context = browser.new_context()
        try:
            page = context.new_page()
            # The attacker's DNS first answers with its own server (the page comes from
            # there: fulfilled here), then with 127.0.0.1: the page's calls reach the
            # gateway as same-origin requests with Host: 127.attacker.test.
            page.route(origin + "/", lambda r: r.fulfill(body=PAGE, content_type="text/html"))
            page.goto(origin + "/")
            out = page.evaluate(ATTACK, "")
        finally:
            context.close()
    # Same-origin: the page reads the guard's own refusal.
    assert out["cookies"].startswith("403 ") and "host_not_allowed" in out["cookies"], out
    assert out["chat"].startswith("403 "), out
    assert not victim.seen
