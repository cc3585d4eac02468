"""The request side of a chat call (transport.py): the body as aiohttp would send bytes,
and the anonymous slot held by the call itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import g4f_server_pollinations as plugin
from g4f_server import errors
from g4f_server.requests import ChatRequest
from g4f_server.testing import chat_events, wait_until


async def collect(request: ChatRequest, context: Any) -> list[Any]:
    return [event async for event in chat_events(plugin.chat(request, context))]


def req(text: str = "Hi", **fields: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "openai", "messages": [{"role": "user", "content": text}], **fields}
    )


@pytest.mark.parametrize("keyed", [False, True])
async def test_the_body_arrives_as_json(emulator: Any, ctx: Any, keyed: bool) -> None:
    context = ctx(api_key="sk_test_key") if keyed else ctx()
    await collect(req("héllo", temperature=0.5), context)
    seen = emulator.last("chat")
    assert seen.headers["content-type"] == "application/json"
    assert seen.json["messages"] == [{"role": "user", "content": "héllo"}]
    assert seen.json["temperature"] == 0.5


@pytest.fixture
def one_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """One anonymous text call at a time, and a call that cannot get it fails at once."""
    monkeypatch.setenv("POLLINATIONS_ANON_TEXT_CONCURRENCY", "1")
    monkeypatch.setenv("POLLINATIONS_QUEUE_TIMEOUT", "0.3")


def slot(context: Any) -> asyncio.Semaphore:
    return context.state["anon_slots"][("text", 1)]


@pytest.mark.usefixtures("one_slot")
async def test_the_anonymous_slot_is_released_after_a_failure(emulator: Any, ctx: Any) -> None:
    """The call holds the slot from before its request until after its release, failed
    or not: the next call gets it."""
    context = ctx()
    emulator.fail("chat", "500", times=1)
    with pytest.raises(errors.ProviderError):
        await collect(req(), context)
    assert not slot(context).locked()  # at once, not when the garbage is collected
    assert [e for e in await collect(req(), context) if hasattr(e, "text")]


@pytest.mark.usefixtures("one_slot")
async def test_the_anonymous_slot_is_released_when_the_call_is_cancelled(
    emulator: Any, ctx: Any
) -> None:
    emulator.stall_seconds = 10
    emulator.fail("chat", "stall", times=1)
    context = ctx()
    stalled = asyncio.create_task(collect(req(), context))
    await wait_until(lambda: len(emulator.seen("chat")) == 1, what="the stalled call upstream")
    with pytest.raises(errors.ProviderRateLimitError, match="queued"):
        await collect(req(), context)  # the slot is the stalled call's
    stalled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stalled
    assert not slot(context).locked()
    assert [e for e in await collect(req(), context) if hasattr(e, "text")]
