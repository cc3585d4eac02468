"""Calling the chosen provider: failover until a part of the answer arrives, timeouts after
it, and the served-by headers that name who answered.

``start_chat`` gives a ``ChatRun`` (the winner, its first events and the rest of its
stream, on one ``Watchdog``); ``replay`` gives one whose whole answer is known already (a
cache hit, an emulated answer); ``ChatRun.cut_at`` cuts its text at a stop sequence when
the model may ignore it (``stops.py``)."""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar, overload

from g4f_server import errors
from g4f_server.appkeys import REQUEST_ID, SERVED_BY
from g4f_server.events import (
    NOT_ANSWERS,
    ChatEvent,
    ChatItem,
    Media,
    ReasoningDelta,
    TextDelta,
    answers,
)
from g4f_server.logs import get_logger
from g4f_server.pipeline import stops
from g4f_server.pipeline.media import MEDIA
from g4f_server.pipeline.transcript import Transcript
from g4f_server.provider import ProviderContext
from g4f_server.providers.registry import ProviderEntry, Route

if TYPE_CHECKING:
    from aiohttp import web

    from g4f_server.requests import ChatRequest

log = get_logger("g4f_server.dispatch")
T = TypeVar("T")
Stream = AsyncIterator[ChatItem]  # what a provider's chat hook returns
# The routes tried for the request being handled, for its access line when no provider
# served it (all failed, or the client left meanwhile). The middleware gives each request
# a list of its own; aiohttp runs each request in a task (and context) of its own.
attempted: ContextVar[list[Route] | None] = ContextVar("g4f_attempted", default=None)


class _Ticker:
    """One timer per event loop for every watchdog on it: it fires at the soonest look any
    of them needs and checks those that are due. A watchdog's own ``call_at`` and
    ``cancel`` (a uvloop timer each) were ~9k instructions per request; a set add and
    discard are a few hundred, and the timer is re-armed only when a look is wanted
    sooner than it fires (rare: every watchdog on a loop shares the server's timeouts)."""

    __slots__ = ("_handle", "_when", "clock", "loop", "watching")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock = loop.time  # the bound method its watchdogs share (not one each)
        self.watching: set[Watchdog] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf

    def look_at(self, at: float) -> None:
        """Some watchdog needs a look no later than ``at``."""
        if at < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._when = at
            self._handle = self.loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self._handle, self._when = None, math.inf
        now = self.loop.time()
        soonest = math.inf
        for watchdog in list(self.watching):  # a check may cancel a task, never add one
            if watchdog._next <= now:
                watchdog._check(now)
            if watchdog._next < soonest:
                soonest = watchdog._next
        if soonest < math.inf:
            self.look_at(soonest)


# The ticker of the loop last seen: a server process runs one loop. A watchdog keeps its
# own ticker, so a second loop (tests) only makes a ticker of its own, never a wrong one.
_ticker: _Ticker | None = None


def _ticker_for(loop: asyncio.AbstractEventLoop) -> _Ticker:
    global _ticker
    ticker = _ticker
    if ticker is None or ticker.loop is not loop:
        ticker = _ticker = _Ticker(loop)
    return ticker


class Watchdog:
    """Cancels the task it was made in when a wait for the provider runs over its limit,
    or when the deadline has passed; ``fired()`` then tells that cancellation from any
    other. Waits are marked with ``start_wait``/``end_wait``, so time spent writing to
    the client never counts.

    One watch for a whole request (first event, failover, every chunk), looked at lazily
    by its loop's shared ``_Ticker``, instead of an ``asyncio.timeout`` per wait: creating
    and cancelling the timer is most of a timeout's cost, and per chunk that was ~13% of a
    streamed answer's CPU.
    """

    __slots__ = (
        "_cancelling",
        "_deadline",
        "_fired",
        "_limit",
        "_next",
        "_period",
        "_task",
        "_ticker",
        "clock",
        "since",
    )

    def __init__(self, period: float) -> None:
        """``period``: the shortest limit it will be given (it looks at least that often)."""
        loop = asyncio.get_running_loop()
        ticker = _ticker
        if ticker is None or ticker.loop is not loop:
            ticker = _ticker_for(loop)
        self._ticker = ticker
        # Read by the loops that wait for the provider: ``since = clock()`` before each
        # wait, ``since = None`` after it (attributes, not method calls: per chunk).
        self.clock = clock = ticker.clock
        self._task = task = asyncio.current_task(loop)
        self._cancelling = task.cancelling() if task is not None else 0
        self._period = self._limit = period
        self._deadline: float | None = None
        self.since: float | None = None  # when the current wait began; None: not waiting
        self._fired = False
        self._next = at = clock() + period  # when it looks next (inf: fired, or stopped)
        ticker.watching.add(self)
        if at < ticker._when:
            ticker.look_at(at)

    def set_deadline(self, within: float | None) -> None:
        if within is None:
            self._deadline = None
            return
        self._deadline = deadline = self.clock() + within
        if deadline < self._next:  # sooner than the next look: look then
            self._next = deadline
            self._ticker.look_at(deadline)

    @property
    def past_deadline(self) -> bool:
        return self._deadline is not None and self.clock() >= self._deadline

    def start_wait(self, limit: float) -> bool:
        """A wait of at most ``limit`` seconds begins; False (and no wait) once the
        deadline is past."""
        self._limit = limit
        self.since = now = self.clock()
        return self._deadline is None or now < self._deadline

    def end_wait(self) -> None:
        self.since = None

    def fired(self) -> bool:
        """Whether the cancellation being handled is this watchdog's. If so it is taken
        back (the caller raises a timeout error instead) and watching goes on."""
        if not self._fired:
            return False
        self._fired = False
        self.since = None
        self._next = at = self.clock() + self._period
        self._ticker.look_at(at)
        task = self._task
        # Someone else cancelled the task too (the client left): that one goes on.
        return task is None or task.uncancel() <= self._cancelling

    def stop(self) -> None:
        self._next = math.inf
        self._ticker.watching.discard(self)

    def _check(self, now: float) -> None:
        since, deadline = self.since, self._deadline
        if since is not None and (
            now - since >= self._limit or (deadline is not None and now >= deadline)
        ):
            self._fired = True
            self._next = math.inf  # no look until fired() takes the cancellation back
            if self._task is not None:
                self._task.cancel()
            return
        # Not waiting, or not yet over: look again when the wait would run over (or after
        # a period when there is no wait; a deadline passed meanwhile stops the next one).
        at = now + self._period if since is None else since + self._limit
        if deadline is not None and now < deadline < at:
            at = deadline
        self._next = at


class ChatRun(Watchdog):
    """A provider that has produced its first event; the rest is still to be read.

    It is its own ``Watchdog``: the one that watched for the first event (made by
    ``start_chat`` before the first attempt) goes on watching, and becomes the run when
    the answer begins (``answered``): one object per request instead of two."""

    __slots__ = ("attempts", "ctx", "cut", "ended", "first", "idle_timeout", "route", "stream")

    route: Route
    attempts: int
    first: Sequence[ChatEvent]  # up to the first batch with a part of the answer in it
    stream: AsyncIterator[ChatItem]
    idle_timeout: float
    ctx: ProviderContext | None  # the winner's (the headers it passes on)
    # The kernel cuts the text at a stop sequence (stops.py); None for nearly every run.
    cut: stops.StopCut | None
    ended: bool  # the provider's stream ended by itself: nothing to release

    def answered(
        self,
        route: Route,
        attempts: int,
        first: Sequence[ChatEvent],
        stream: AsyncIterator[ChatItem],
        idle_timeout: float,
        ctx: ProviderContext | None = None,
    ) -> ChatRun:
        """The watch becomes the run: ``route`` answered on attempt ``attempts``."""
        self.route = route
        self.attempts = attempts
        self.first = first
        self.stream = stream
        self.idle_timeout = idle_timeout
        self.ctx = ctx
        self.cut = None
        self.ended = False
        return self

    @property
    def watchdog(self) -> ChatRun:
        """The run's watchdog: itself (the protocols' write loop reads it by this name)."""
        return self

    def cut_at(self, stop: Sequence[str] | None) -> bool:
        """Cut this run's text at the first of ``stop`` from here on (as it is read), unless
        the model says it honours stop sequences itself; True when it will."""
        if not stops.needed(self.route, stop):
            return False
        assert stop is not None
        cut = self.cut = stops.StopCut(stop)
        self.first = cut.feed(self.first)
        return True

    def begin(self, within: float | None) -> None:
        """Reading the rest of the answer begins: each wait for the provider is bounded by
        ``idle_timeout`` (time spent writing to the client does not count) and, if given,
        the whole rest of the answer by ``within`` seconds. The readers (``read`` and the
        protocols' write loop) wait on ``stream`` themselves: a generator between them
        and the provider was one more frame switch per chunk."""
        if within is None:  # every streamed answer: set_deadline(None), in line
            self._deadline = None
        else:
            self.set_deadline(within)
        self._limit = self.idle_timeout

    async def read(
        self,
        transcript: Transcript,
        within: float | None,
        request: web.Request | None = None,
        then: Callable[[Transcript], Awaitable[None]] | None = None,
    ) -> Transcript:
        """The whole answer into ``transcript`` (the first batch included), then the stream
        is released. With ``request``, media without a URL is published (``pipeline.media``)
        on the way; ``then`` is awaited with the finished transcript (the turn stores it:
        in this frame, not in one more around it)."""
        watchdog, stream, cut = self, self.stream, self.cut
        clock = watchdog.clock
        self.begin(within)
        deadline = self._deadline
        add, text, next_item = transcript.add, transcript.text.append, stream.__anext__
        batch = self.first
        last = cut is not None and cut.found is not None  # the first batch ended at a stop
        try:
            while True:
                for event in batch:
                    kind = type(event)
                    if kind is TextDelta:  # most events: straight to the text
                        text(event.text)
                        continue
                    # The usual others (the model, usage, the finish) are no Media: a
                    # failed isinstance() costs ~4x the set lookup that tells so.
                    if (
                        kind not in NOT_ANSWERS
                        and isinstance(event, Media)
                        and request is not None
                        and event.url is None
                    ):
                        event = await request.app[MEDIA].publish(event, request)
                    add(event)
                if last:
                    break
                # The wait below is streaming.relay's too (each copy names the other).
                watchdog.since = now = clock()
                if deadline is not None and now >= deadline:
                    raise self.timeout_error(within)
                try:
                    item = await next_item()
                except StopAsyncIteration:
                    watchdog.since = None
                    self.ended = True
                    if cut is None or not (batch := cut.flush()):
                        break
                    last = True  # held back as a possible start of a stop: text after all
                    continue
                except asyncio.CancelledError:
                    if watchdog.fired():
                        raise self.timeout_error(within) from None
                    raise
                watchdog.since = None
                batch = item if isinstance(item, list) else (item,)
                if cut is not None:
                    batch = cut.feed(batch)
                    last = cut.found is not None  # the rest is dropped; close() ends it
        finally:
            if (closing := self.closing()) is not None:
                await closing
        if then is not None:
            await then(transcript)
        return transcript

    def timeout_error(self, within: float | None) -> errors.ProviderTimeoutError:
        name = self.route.entry.name
        if self.past_deadline:
            return errors.ProviderTimeoutError(
                f"Provider '{name}' did not finish within {within:g}s"
            )
        return errors.ProviderTimeoutError(
            f"Provider '{name}' sent nothing for {self.idle_timeout:g}s"
        )

    def closing(self) -> Awaitable[None] | None:
        """``close()`` on a reader's way out: None when the stream ended by itself (the
        watchdog is stopped here, as close() would: no coroutine for that), else the
        ``close()`` to await."""
        if self.ended:
            self.stop()
            return None
        return self.close()

    async def close(self) -> None:
        """Stop watching and release the provider's stream (unless it ended by itself)."""
        self.stop()
        if self.ended:
            return
        aclose = getattr(self.stream, "aclose", None)
        if aclose is not None:
            await aclose()


def unexpected(entry: ProviderEntry, exc: BaseException) -> errors.ProviderError:
    """A provider bug, reported without its internals (they go to the log)."""
    log.error("provider_crashed", provider=entry.name, exc_info=exc)
    return errors.ProviderError(f"Provider '{entry.name}' failed unexpectedly")


async def first_success(
    routes: Sequence[Route],
    attempt: Callable[[Route], Awaitable[T]],
    *,
    timeout: float,
    watchdog: Watchdog | None = None,
) -> tuple[Route, int, T]:
    """Run ``attempt`` on each route, each within ``timeout``, until one succeeds. Only a
    ``ProviderError`` (or a provider bug, or a timeout) moves on to the next route: any
    other ``G4FError`` means the request itself is wrong, and another provider will not
    help. A ``watchdog`` passed in is left running for the caller."""
    own = watchdog is None
    watching = Watchdog(timeout) if watchdog is None else watchdog
    failures: list[tuple[str, errors.ProviderError]] = []
    tried = attempted.get()
    try:
        for number, route in enumerate(routes, start=1):
            if tried is not None:
                tried.append(route)
            try:
                started = time.perf_counter()
                watching.start_wait(timeout)
                try:
                    result = route, number, await attempt(route)
                    # Closes the cooldown; the time to the answer's start goes into the
                    # provider's health (providers/health.py): two clock reads per call.
                    route.entry.succeeded(time.perf_counter() - started)
                    return result
                except asyncio.CancelledError:
                    if not watching.fired():
                        raise
                    raise TimeoutError from None
                finally:
                    watching.end_wait()
            except Exception as exc:
                _failed(route, number, _failure(exc, route.entry, timeout), failures)
        raise _all_failed(failures)
    finally:
        if own:
            watching.stop()


def _failure(exc: Exception, entry: ProviderEntry, timeout: float) -> errors.ProviderError:
    """What a route's failure before its answer began says (the next route is tried);
    a gateway error that is not the provider's (a refused request) is raised as it is."""
    if isinstance(exc, TimeoutError):  # ours, or the provider's own
        return errors.ProviderTimeoutError(
            f"Provider '{entry.name}' did not answer within {timeout:g}s"
        )
    if isinstance(exc, errors.ProviderError):
        return exc
    if isinstance(exc, errors.G4FError):
        raise exc
    return unexpected(entry, exc)


def _failed(
    route: Route,
    number: int,
    failure: errors.ProviderError,
    failures: list[tuple[str, errors.ProviderError]],
) -> None:
    """One route failed before its answer began: logged, counted and kept for the error."""
    # Not the message: it may quote the upstream's answer (content is never logged).
    log.info(
        "provider_failed",
        provider=route.entry.name,
        attempt=number,
        error=type(failure).__name__,
        code=failure.code,
        status=failure.status,
    )
    route.entry.failed(failure)  # health, and cooldown after repeated failures
    failures.append((route.entry.name, failure))


def _all_failed(failures: list[tuple[str, errors.ProviderError]]) -> errors.ProviderError:
    """One error for the client: the failure itself when one provider was tried; with
    several, every provider's reason, keeping the status only when they all agree."""
    assert failures, "resolve() never returns an empty route list"
    error = failures[-1][1]
    if len(failures) > 1:
        reasons = "; ".join(f"{name}: {failure.message}" for name, failure in failures)
        message = f"No provider could answer ({len(failures)} tried). {reasons}"
        if all(f.status == error.status for _, f in failures):
            error = copy.copy(error)
            error.message = message
        else:
            error = errors.ProviderError(message)
    error.headers["X-G4F-Attempts"] = str(len(failures))
    return error


def answers_visibly(event: ChatEvent) -> bool:
    """``answers`` for a protocol that cannot show reasoning (legacy completions): only
    text that is not blank, a tool call or media make an answer there."""
    return not isinstance(event, ReasoningDelta) and answers(event)


def empty_answer(
    entry: ProviderEntry, counts: Callable[[ChatEvent], bool] = answers
) -> errors.ProviderError:
    what = "no text, tool call, media or reasoning"
    if counts is answers_visibly:
        what = "no text, tool call or media; reasoning alone cannot be shown in this protocol"
    return errors.ProviderError(
        f"Provider '{entry.name}' returned an empty answer ({what})", code="empty_answer"
    )


@overload
async def start_chat(
    routes: Sequence[Route],
    request: ChatRequest,
    make_ctx: Callable[[ProviderEntry], ProviderContext],
    *,
    first_event_timeout: float,
    idle_timeout: float,
    counts: Callable[[ChatEvent], bool] = answers,
    then: None = None,
) -> ChatRun: ...


@overload
async def start_chat(
    routes: Sequence[Route],
    request: ChatRequest,
    make_ctx: Callable[[ProviderEntry], ProviderContext],
    *,
    first_event_timeout: float,
    idle_timeout: float,
    counts: Callable[[ChatEvent], bool] = answers,
    then: Callable[[ChatRun], T],
) -> T: ...


async def start_chat(
    routes: Sequence[Route],
    request: ChatRequest,
    make_ctx: Callable[[ProviderEntry], ProviderContext],
    *,
    first_event_timeout: float,
    idle_timeout: float,
    counts: Callable[[ChatEvent], bool] = answers,
    then: Callable[[ChatRun], T] | None = None,
) -> ChatRun | T:
    """Try each route until one yields a part of the answer (see ``answers``). Events
    before it are held back with it, so nothing reaches the client before the answer
    is known not to be empty: an answer that ends without one is an ``empty_answer``
    provider error, and the next route is tried. The client's first byte therefore
    always comes with a part of the answer, and an answer cannot turn out empty after
    the headers. ``counts`` says what is a part of the answer (``answers_visibly`` for a
    protocol that cannot show reasoning). ``then`` is called with the run and its result
    returned, in this coroutine: the chat turn is made there, so that every resume of the
    provider's request passes through one frame of ours, not two. A failure in it is not
    the provider's (no failover, no failure recorded): the run is closed and it is raised."""

    # first_success with the first read inlined: one coroutine frame, not three, is
    # what every resume of the provider's request passes through until its answer begins.
    watchdog = ChatRun(min(first_event_timeout, idle_timeout))  # the run, once answered
    clock = watchdog.clock
    failures: list[tuple[str, errors.ProviderError]] = []
    tried = attempted.get()
    timeout = first_event_timeout
    try:
        for number, route in enumerate(routes, start=1):
            if tried is not None:
                tried.append(route)
            entry = route.entry
            try:
                # start_wait(timeout) in line (no deadline yet: the wait always begins); its
                # clock times the answer's start for the provider's health, too.
                watchdog._limit = timeout
                watchdog.since = started = clock()
                stream: Stream | None = None
                try:
                    if request.model != route.model:  # the provider sees its own model id
                        request_for = request.model_copy(update={"model": route.model})
                    else:
                        request_for = request
                    ctx = make_ctx(entry)
                    stream = entry.chat(request_for, ctx)  # type: ignore[misc]  # routes can chat
                    next_item = stream.__anext__
                    held: list[ChatEvent] | None = None
                    while True:
                        item = await next_item()
                        batch = item if isinstance(item, list) else (item,)
                        for event in batch:  # any(map(counts, batch)), without its objects
                            if counts(event):
                                break
                        else:
                            if held is None:
                                held = []
                            held.extend(batch)
                            continue
                        break
                    if held:
                        held.extend(batch)
                        batch = held
                    # Closes the cooldown; the time to the answer's start goes into the
                    # provider's health (providers/health.py): one more clock read.
                    entry.succeeded(clock() - started)
                    run = watchdog.answered(route, number, batch, stream, idle_timeout, ctx)
                    break
                except StopAsyncIteration:
                    raise empty_answer(entry, counts) from None
                except BaseException as exc:
                    if stream is not None:  # failed, timed out or cancelled: release it
                        await stream.aclose()
                    if isinstance(exc, asyncio.CancelledError):
                        if not watchdog.fired():
                            raise
                        raise TimeoutError from None
                    raise
                finally:
                    watchdog.since = None  # end_wait()
            except Exception as exc:
                _failed(route, number, _failure(exc, entry, timeout), failures)
        else:
            raise _all_failed(failures)
    except BaseException:
        watchdog.stop()
        raise
    if then is None:
        return run
    try:
        return then(run)
    except BaseException:
        await run.close()  # nobody else holds the run: release the provider's stream
        raise


async def _nothing_more() -> AsyncIterator[ChatItem]:
    """The rest of a replayed answer: all of it was in the first batch."""
    return
    yield  # pragma: no cover  (makes this an async generator)


def replay(
    route: Route,
    attempts: int,
    events: Sequence[ChatEvent],
    idle_timeout: float,
    ctx: ProviderContext | None = None,
) -> ChatRun:
    """A ChatRun whose whole answer is ``events`` (a cache hit, an emulated answer)."""
    return ChatRun(idle_timeout).answered(
        route, attempts, events, _nothing_more(), idle_timeout, ctx
    )


_OWN_HEADERS = ("x-g4f-", "x-request-id")


def served_headers(
    request: web.Request,
    route: Route,
    attempts: int,
    ctx: ProviderContext | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """Who served the request, after the ``x-`` headers the provider passed on (ctx);
    ``request_id``: the request's, when the caller has read it already."""
    provider = route.entry.info.name
    request[SERVED_BY] = (provider, route.model, attempts)
    if request_id is None:
        request_id = request[REQUEST_ID]
    if ctx is None or not ctx.response_headers:  # most providers pass none on
        return {
            "X-G4F-Provider": provider,
            "X-G4F-Attempts": str(attempts),
            "X-Request-Id": request_id,
        }
    headers = {}
    for name, value in ctx.response_headers.items():
        low = name.lower()
        if low.startswith("x-") and not low.startswith(_OWN_HEADERS) and value.isprintable():
            headers[name] = value
    headers["X-G4F-Provider"] = provider
    headers["X-G4F-Attempts"] = str(attempts)
    headers["X-Request-Id"] = request_id
    return headers
