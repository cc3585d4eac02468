"""The router keeps its decisions by request shape (Registry.decided): what it kept must
follow a refreshed model list and a new routing table, and the health order of several
candidates is still decided for every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from g4f_server import errors, events, hookimpl
from g4f_server.appkeys import CONFIG
from g4f_server.provider import ModelInfo, ProviderContext, ProviderInfo
from g4f_server.providers.context import make_context
from g4f_server.providers.model_table import ModelTable
from g4f_server.providers.registry import REGISTRY
from g4f_server.providers.router import resolve
from g4f_server.requests import ChatRequest
from tests.fake_providers import Scripted

USER = [{"role": "user", "content": "hi"}]


def _chat_routes(app: Any, model: str) -> list[tuple[str, str]]:
    routes = resolve(app[REGISTRY], app[CONFIG], capability="chat", model=model)
    return [(r.entry.name, r.model) for r in routes]


async def test_a_kept_decision_follows_a_refreshed_model_list(make_client: Any) -> None:
    echo = Scripted()
    app = (await make_client(echo)).app
    assert _chat_routes(app, "echo-1") == [("Echo", "echo-1")]
    assert _chat_routes(app, "echo-1") == [("Echo", "echo-1")]  # now kept
    echo.models = [ModelInfo("echo-2", frozenset({"chat"}))]
    await app[REGISTRY].refresh_models(lambda e: make_context(app, e), 5)
    with pytest.raises(errors.ModelNotFoundError):
        _chat_routes(app, "echo-1")
    assert _chat_routes(app, "echo-2") == [("Echo", "echo-2")]


async def test_a_kept_decision_follows_a_new_routing_table(make_client: Any) -> None:
    app = (await make_client(Scripted(), Scripted(name="Other"))).app
    # The built-in table: gpt-4o is every provider that opted in, at its default model.
    assert _chat_routes(app, "gpt-4o") == [("Echo", "echo-1"), ("Other", "echo-1")]
    app[REGISTRY].table = ModelTable.build({"gpt-4o": ["Other:plain"]})
    assert _chat_routes(app, "gpt-4o") == [("Other", "plain")]


async def test_a_kept_decision_still_puts_a_failing_provider_last(make_client: Any) -> None:
    app = (await make_client(Scripted(name="A", priority=1), Scripted(name="B", priority=2))).app
    assert _chat_routes(app, "echo-1") == [("A", "echo-1"), ("B", "echo-1")]
    app[REGISTRY].get("A").failed(errors.ProviderError("upstream down"))
    assert _chat_routes(app, "echo-1") == [("B", "echo-1"), ("A", "echo-1")]


class CtxFirst:
    """A chat hook that takes its arguments in the other order (pluggy passes them by
    name): the registry's bound caller must still hand each its own."""

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name="CtxFirst", default_model="m")

    @hookimpl
    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("m", frozenset({"chat"}))]

    @hookimpl
    async def chat(
        self, ctx: ProviderContext, request: ChatRequest
    ) -> AsyncIterator[events.ChatEvent]:
        yield events.TextDelta(f"{request.model} for {ctx.request_id != ''}")
        yield events.Finish("stop")


async def test_a_chat_hook_with_its_arguments_in_another_order(make_client: Any) -> None:
    client = await make_client(CtxFirst())
    resp = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "m for True"
