"""The dispatcher's one watchdog per request: timeouts, failover after one, and outside
cancellations that must not be mistaken for a timeout."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from g4f_server import errors
from g4f_server.pipeline import dispatch
from g4f_server.pipeline.dispatch import Watchdog, first_success
from tests.fake_providers import Scripted

USER = [{"role": "user", "content": "hi"}]


async def test_a_slow_provider_times_out_and_the_next_one_answers(make_client: Any) -> None:
    slow = Scripted(name="Slow", priority=1, delay=5)
    quick = Scripted(name="Quick", priority=2)
    client = await make_client(slow, quick, timeout=0.2)
    started = asyncio.get_running_loop().time()
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-G4F-Provider"] == "Quick"
    assert resp.headers["X-G4F-Attempts"] == "2"
    assert asyncio.get_running_loop().time() - started < 3


async def test_every_attempt_gets_its_own_timeout() -> None:
    """Three slow attempts in a row each time out after their own limit."""
    calls: list[float] = []

    async def attempt(route: Any) -> None:
        calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(5)

    routes = [_route(name) for name in ("a", "b", "c")]
    with pytest.raises(errors.ProviderTimeoutError) as failed:
        await first_success(routes, attempt, timeout=0.1)
    assert "(3 tried)" in failed.value.message
    assert len(calls) == 3
    assert all(0.08 < later - earlier < 1.0 for earlier, later in itertools.pairwise(calls))


async def test_an_outside_cancel_is_not_turned_into_a_timeout() -> None:
    async def attempt(route: Any) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:  # the watchdog's: the limit ran out
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # ... and the client leaves while the attempt cleans up
            await asyncio.sleep(0)
            raise

    task = asyncio.create_task(first_success([_route("a")], attempt, timeout=0.05))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_watchdog_deadline_ends_a_wait_and_forbids_the_next() -> None:
    watchdog = Watchdog(10.0)
    try:
        watchdog.set_deadline(0.05)
        assert watchdog.start_wait(10.0)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(5)
        assert watchdog.fired()
        assert watchdog.past_deadline
        assert not watchdog.start_wait(10.0)  # no new wait once the deadline is past
    finally:
        watchdog.stop()


async def test_watchdog_does_not_count_time_outside_waits() -> None:
    watchdog = Watchdog(0.05)
    try:
        await asyncio.sleep(0.2)  # not waiting: four periods pass without a cancellation
        watchdog.start_wait(0.05)
        await asyncio.sleep(0.01)
        watchdog.end_wait()
        assert not watchdog.fired()
    finally:
        watchdog.stop()


async def test_watchdogs_on_one_loop_each_keep_their_own_limit() -> None:
    """They share one timer: a short limit set after a long one still fires on time, and
    a watchdog stopped meanwhile is not looked at any more."""

    async def wait(period: float, stop_first: bool = False, sleep: float = 0.3) -> float:
        watchdog = Watchdog(period)
        started = asyncio.get_running_loop().time()
        try:
            if stop_first:
                watchdog.stop()
            watchdog.start_wait(period)
            await asyncio.sleep(sleep)
        except asyncio.CancelledError:
            if not watchdog.fired():
                raise  # not the watchdog's: the test's own cancel
            return asyncio.get_running_loop().time() - started
        finally:
            watchdog.stop()
        return -1.0  # slept it out: nothing cancelled it

    long = asyncio.create_task(wait(10.0, sleep=5.0))
    await asyncio.sleep(0)
    stopped = asyncio.create_task(wait(0.05, stop_first=True))
    short = asyncio.create_task(wait(0.1))
    took = await short
    assert 0.08 < took < 0.29
    assert await stopped == -1.0
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long


def _route(name: str) -> Any:
    from g4f_server.provider import ProviderInfo
    from g4f_server.providers.registry import ProviderEntry
    from g4f_server.providers.router import Route

    return Route(ProviderEntry(info=ProviderInfo(name=name), plugin_name=name), "m")


async def test_what_a_failed_attempt_says_before_the_next_is_tried() -> None:
    """A provider's timeout, its own error and its crash each become a ProviderError and
    the next route is tried; a refusal of the request itself is raised at once."""
    said: list[str] = []

    def failing(exc: Exception) -> Any:
        async def attempt(route: Any) -> None:
            said.append(route.entry.name)
            raise exc

        return attempt

    cases: list[tuple[Exception, type[errors.G4FError], str]] = [
        (TimeoutError(), errors.ProviderTimeoutError, "did not answer within 2s"),
        (errors.ProviderError("upstream said no"), errors.ProviderError, "upstream said no"),
        (RuntimeError("internal detail"), errors.ProviderError, "failed unexpectedly"),
    ]
    for exc, kind, message in cases:
        with pytest.raises(kind) as failed:
            await first_success([_route("a"), _route("b")], failing(exc), timeout=2)
        assert message in failed.value.message
        assert "internal detail" not in failed.value.message
        assert said == ["a", "b"], said  # both tried
        said.clear()
    with pytest.raises(errors.InvalidRequestError):
        await first_success(
            [_route("a"), _route("b")], failing(errors.InvalidRequestError("bad")), timeout=2
        )
    assert said == ["a"]  # not the provider's fault: no second try


async def test_a_chat_provider_that_crashes_is_failed_over_and_a_refusal_is_not(
    make_client: Any,
) -> None:
    crashing = Scripted(name="Crashing", priority=1, fail=RuntimeError("internal detail"))
    refusing = Scripted(name="Refusing", priority=1, fail=errors.InvalidRequestError("no such"))
    quick = Scripted(name="Quick", priority=2)
    client = await make_client(crashing, quick)
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-G4F-Provider"] == "Quick"
    assert resp.headers["X-G4F-Attempts"] == "2"

    quick.seen.clear()
    client = await make_client(refusing, quick)
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": USER})
    assert resp.status == 400, await resp.text()
    assert "no such" in (await resp.json())["error"]["message"]
    assert len(refusing.seen) == 1 and quick.seen == []


async def test_an_answer_that_ended_leaves_no_watchdog_behind(make_client: Any) -> None:
    """A provider's stream that ended by itself is not closed again: its watchdog is
    stopped in line instead (ChatRun.read, the streamed write loop), and must be, or
    the loop's ticker would keep looking at a finished request."""
    client = await make_client(Scripted(), timeout=30)
    for stream in (False, True):
        body = {"model": "echo-1", "messages": USER, "stream": stream}
        resp = await client.post("/v1/chat/completions", json=body)
        assert resp.status == 200, await resp.text()
        await resp.read()
    ticker = dispatch._ticker_for(asyncio.get_running_loop())
    assert ticker.watching == set()


async def test_a_failure_of_then_is_not_the_providers_and_releases_its_stream() -> None:
    """start_chat's ``then`` (the turn made when the answer begins) runs after failover:
    its error is raised as it is, the next route is not tried, the provider's health
    records the success it had, and its stream is closed and no longer watched."""
    from g4f_server.events import TextDelta

    closed: list[str] = []

    def provider(name: str) -> Any:
        route = _route(name)

        async def chat(request: Any, ctx: Any) -> Any:
            try:
                yield TextDelta("hi")
                yield TextDelta(" there")
            finally:
                closed.append(name)

        route.entry.chat = chat
        return route

    def refuse(run: Any) -> None:
        raise ValueError("the turn could not be made")

    first, second = provider("a"), provider("b")
    chat = type("Chat", (), {"model": "m"})()
    with pytest.raises(ValueError, match="could not be made"):
        await dispatch.start_chat(
            [first, second],
            chat,  # type: ignore[arg-type]
            lambda entry: None,  # type: ignore[arg-type,return-value]
            first_event_timeout=5,
            idle_timeout=5,
            then=refuse,
        )
    assert closed == ["a"]  # released, and "b" never called
    assert first.entry.vitals.last_ok is True
    ticker = dispatch._ticker_for(asyncio.get_running_loop())
    assert ticker.watching == set()
