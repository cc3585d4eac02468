"""Calling the chosen provider: failover before the first event, timeouts after it."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from g4f_server import errors
from g4f_server.events import ChatEvent, ChatItem
from g4f_server.logs import get_logger
from g4f_server.provider import ProviderContext
from g4f_server.registry import ProviderEntry
from g4f_server.router import Route

if TYPE_CHECKING:
    from g4f_server.schemas.chat import ChatRequest

log = get_logger("g4f_server.dispatch")
T = TypeVar("T")


@dataclass(slots=True)
class ChatRun:
    """A provider that has produced its first event; the rest is still to be read."""

    route: Route
    attempts: int
    first: Sequence[ChatEvent]  # the first batch: never empty
    stream: AsyncIterator[ChatItem]
    idle_timeout: float

    async def batches(self, within: float | None = None) -> AsyncIterator[Sequence[ChatEvent]]:
        """The answer as the provider yielded it, a single event as a batch of one, the
        first batch included. Each wait for the provider is bounded by ``idle_timeout``
        (time spent writing to the client does not count) and, if given, the whole rest
        of the answer by ``within`` seconds."""
        deadline = None if within is None else asyncio.get_running_loop().time() + within
        yield self.first
        stream = self.stream
        watchdog = _Watchdog(self.idle_timeout, deadline)
        try:
            while True:
                if not watchdog.may_wait():
                    raise self._timeout_error(watchdog, within)
                try:
                    item = await anext(stream)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if watchdog.fired():
                        raise self._timeout_error(watchdog, within) from None
                    raise
                watchdog.idle()
                yield item if isinstance(item, list) else (item,)
        finally:
            watchdog.stop()

    def _timeout_error(
        self, watchdog: _Watchdog, within: float | None
    ) -> errors.ProviderTimeoutError:
        name = self.route.entry.name
        if watchdog.past_deadline:
            return errors.ProviderTimeoutError(
                f"Provider '{name}' did not finish within {within:g}s"
            )
        return errors.ProviderTimeoutError(
            f"Provider '{name}' sent nothing for {self.idle_timeout:g}s"
        )

    async def close(self) -> None:
        aclose = getattr(self.stream, "aclose", None)
        if aclose is not None:
            await aclose()


class _Watchdog:
    """Cancels the current task when it has waited for the provider too long, or when
    the deadline has passed.

    One timer per answer, re-armed lazily, instead of an ``asyncio.timeout`` (a timer
    created and cancelled) per chunk: on a streamed answer that was ~13% of the CPU.
    """

    __slots__ = ("_deadline", "_fired", "_handle", "_loop", "_since", "_task", "_timeout")

    def __init__(self, timeout: float, deadline: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._timeout = timeout
        self._deadline = deadline
        self._since: float | None = None
        self._fired = False
        self._handle = self._loop.call_at(self._next_check(self._loop.time()), self._check)

    @property
    def past_deadline(self) -> bool:
        return self._deadline is not None and self._loop.time() >= self._deadline

    def may_wait(self) -> bool:
        """Start a wait for the provider; False (and no wait) once the deadline is past."""
        self._since = now = self._loop.time()
        return self._deadline is None or now < self._deadline

    def idle(self) -> None:
        self._since = None

    def fired(self) -> bool:
        if self._fired and self._task is not None:
            self._task.uncancel()  # the cancellation was ours: it becomes a timeout error
        return self._fired

    def stop(self) -> None:
        self._handle.cancel()

    def _next_check(self, now: float) -> float:
        at = (self._since if self._since is not None else now) + self._timeout
        deadline = self._deadline
        return deadline if deadline is not None and now < deadline < at else at

    def _check(self) -> None:
        # Fires only while the task waits for the provider: never mid-write to the client
        # (a deadline that passes then is caught by the next may_wait).
        now = self._loop.time()
        if self._since is not None and (
            now - self._since >= self._timeout
            or (self._deadline is not None and now >= self._deadline)
        ):
            self._fired = True
            if self._task is not None:
                self._task.cancel()
            return
        self._handle = self._loop.call_at(self._next_check(now), self._check)


def unexpected(entry: ProviderEntry, exc: BaseException) -> errors.ProviderError:
    """A provider bug, reported without its internals (they go to the log)."""
    log.error("provider_crashed", provider=entry.name, exc_info=exc)
    return errors.ProviderError(f"Provider '{entry.name}' failed unexpectedly")


async def first_success(
    routes: list[Route], attempt: Callable[[Route], Awaitable[T]], *, timeout: float
) -> tuple[Route, int, T]:
    """Run ``attempt`` on each route until one succeeds. Only a ``ProviderError`` (or a
    provider bug, or a timeout) moves on to the next route: any other ``G4FError`` means
    the request itself is wrong, and another provider will not help."""
    failures: list[tuple[str, errors.ProviderError]] = []
    for number, route in enumerate(routes, start=1):
        failure: errors.ProviderError
        try:
            async with asyncio.timeout(timeout):
                return route, number, await attempt(route)
        except TimeoutError:
            failure = errors.ProviderTimeoutError(
                f"Provider '{route.entry.name}' did not answer within {timeout:g}s"
            )
        except errors.ProviderError as exc:
            failure = exc
        except errors.G4FError:
            raise
        except Exception as exc:
            failure = unexpected(route.entry, exc)
        # Not the message: it may quote the upstream's answer (content is never logged).
        log.info(
            "provider_failed",
            provider=route.entry.name,
            attempt=number,
            error=type(failure).__name__,
            code=failure.code,
            status=failure.status,
        )
        failures.append((route.entry.name, failure))
    raise _all_failed(failures)


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


async def start_chat(
    routes: list[Route],
    request: ChatRequest,
    make_ctx: Callable[[ProviderEntry], ProviderContext],
    *,
    first_event_timeout: float,
    idle_timeout: float,
) -> ChatRun:
    """Try each route until one yields its first event (or first non-empty batch)."""

    async def first_event(route: Route) -> tuple[AsyncIterator[ChatItem], Sequence[ChatEvent]]:
        entry = route.entry
        if request.model != route.model:  # the provider sees its own model id
            request_for = request.model_copy(update={"model": route.model})
        else:
            request_for = request
        stream = entry.call("chat", request=request_for, ctx=make_ctx(entry))
        try:
            item = await anext(stream)
            while isinstance(item, list) and not item:  # failover lasts until a real event
                item = await anext(stream)
            return stream, item if isinstance(item, list) else (item,)
        except StopAsyncIteration:
            raise errors.ProviderError(
                f"Provider '{entry.name}' returned an empty answer"
            ) from None
        except BaseException:  # failed, timed out or cancelled: release the upstream
            await stream.aclose()
            raise

    route, attempts, (stream, first) = await first_success(
        routes, first_event, timeout=first_event_timeout
    )
    return ChatRun(route, attempts, first, stream, idle_timeout)
