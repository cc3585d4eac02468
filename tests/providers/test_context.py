"""The context a provider is called with: one per call, never shared between calls (a
provider may keep it across awaits while other requests run, and writes its
``response_headers``), while what every call of a provider shares in one app (the HTTP
session, the logger, its state, the timeout, the server's proxy) is looked up once."""

from __future__ import annotations

from typing import Any

from g4f_server.appkeys import HTTP
from g4f_server.providers.context import call_context, make_context
from g4f_server.providers.registry import REGISTRY
from tests.fake_providers import Scripted

SERVER_PROXY = "http://127.0.0.1:9"


async def test_each_call_gets_a_context_of_its_own(make_client: Any) -> None:
    app = (await make_client(Scripted(), timeout=42, proxy=SERVER_PROXY)).app
    entry = app[REGISTRY].get("Echo")
    one = call_context(app, "rid-1", "key-1", None, "conv-1", {"turn": 1}, entry)
    two = call_context(app, "rid-2", None, "http://127.0.0.1:8", None, None, entry)
    assert one is not two
    one.response_headers["x-usage"] = "1"
    assert two.response_headers == {}
    assert (one.request_id, one.api_key, one.proxy) == ("rid-1", "key-1", SERVER_PROXY)
    assert (one.conversation_id, one.conversation) == ("conv-1", {"turn": 1})
    # The request's own proxy goes before the server's.
    assert (two.request_id, two.api_key, two.proxy) == ("rid-2", None, "http://127.0.0.1:8")
    assert (two.conversation_id, two.conversation) == (None, None)
    assert one.http is two.http is app[HTTP]
    assert one.state is two.state is entry.state
    assert one.timeout == two.timeout == 42
    assert one.log is two.log


async def test_a_provider_called_from_another_app_gets_that_apps_session(
    make_client: Any,
) -> None:
    first = (await make_client(Scripted(), timeout=11)).app
    second = (await make_client(Scripted(), timeout=22, proxy=SERVER_PROXY)).app
    entry = first[REGISTRY].get("Echo")
    a = make_context(first, entry)
    b = make_context(second, entry)
    again = make_context(first, entry)
    assert a.http is again.http is first[HTTP]
    assert b.http is second[HTTP] and b.http is not a.http
    assert (a.timeout, a.proxy, b.timeout, b.proxy) == (11, None, 22, SERVER_PROXY)
    assert a.request_id == b.request_id == ""
