"""Active health checks: each provider's cheapest real call, now (``providers --check``)
or every ``probe_interval`` seconds (opt-in: probes spend a free provider's quota).

A provider's check is its ``probe`` hook when it has one, else a one-token chat on its
default chat model; a provider with neither is never probed (its health is what its real
calls say). The checks of one round are spread over the interval (provider i of n starts
i/n of the way in), and a provider never has more than one in flight: asking for a check
while one runs gets that one.

A failed probe marks the provider ``down`` and opens its cooldown at once (routing then
skips it); a successful one closes the cooldown. Probes are not requests: they count in
the success rate and latency, not in the request rate or the failure metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from g4f_server import errors
from g4f_server.config import AppConfig
from g4f_server.events import answers
from g4f_server.logs import get_logger
from g4f_server.provider import ProviderContext
from g4f_server.providers.registry import ProviderEntry, Registry

if TYPE_CHECKING:
    from g4f_server.requests import ChatRequest

log = get_logger("g4f_server.probes")
PROBE_PROMPT = "Reply with one word: ok"
LONGEST = 60.0  # a probe's bound at most: a first token later than that is no "working"


def probe_timeout(config: AppConfig) -> float:
    """How long one probe may take: the upstream timeout, at most the interval (a probe
    never runs into the next one's slot) and at most a minute."""
    return min(config.timeout, config.probe_interval or LONGEST, LONGEST)


def probeable(entry: ProviderEntry) -> bool:
    """Whether the provider has a check: its own ``probe`` hook or a default chat model."""
    if "probe" in entry.impls:
        return True
    return "chat" in entry.capabilities and entry.default_model_for("chat") is not None


def _probe_request(model: str) -> ChatRequest:
    from g4f_server.requests import ChatRequest  # pydantic: only once something is probed

    return ChatRequest(
        model=model, messages=[{"role": "user", "content": PROBE_PROMPT}], max_tokens=1
    )


async def _one_token_chat(entry: ProviderEntry, ctx: ProviderContext) -> None:
    """The default check: a chat on the default model until its first part of the answer
    (the rest is never read: closing the stream releases the upstream)."""
    model = entry.default_model_for("chat") or ""
    stream = entry.call("chat", request=_probe_request(model), ctx=ctx)
    try:
        async for item in stream:
            if any(map(answers, item if isinstance(item, list) else (item,))):
                return
    finally:
        await stream.aclose()
    raise errors.ProviderError(
        f"Provider '{entry.name}' returned an empty answer to the probe", code="empty_answer"
    )


async def probe(
    entry: ProviderEntry, ctx: ProviderContext, timeout: float
) -> errors.G4FError | None:
    """Run one check and record it (health and cooldown); the failure, None when it passed."""
    started = time.perf_counter()
    failure: errors.G4FError
    try:
        async with asyncio.timeout(timeout):
            if "probe" in entry.impls:
                await entry.call("probe", ctx=ctx)
            else:
                await _one_token_chat(entry, ctx)
    except TimeoutError:
        failure = errors.ProviderTimeoutError(
            f"Provider '{entry.name}' did not pass its probe within {timeout:g}s"
        )
    except errors.G4FError as exc:  # a 400 to a one-token chat says as much as a 500
        failure = exc
    except Exception as exc:
        log.error("probe_crashed", provider=entry.name, exc_info=exc)
        failure = errors.ProviderError(f"Provider '{entry.name}' failed unexpectedly")
    else:
        entry.vitals.ok(time.perf_counter() - started, probe=True)
        entry.health.succeeded()
        log.debug("probe_passed", provider=entry.name)
        return None
    entry.vitals.failed(failure, probe=True)
    entry.health.trip(failure)
    # Not the message: it may quote the upstream's answer.
    log.info("probe_failed", provider=entry.name, code=failure.code, status=failure.status)
    return failure


class Prober:
    """The checks of one app: on demand (``check``, ``check_all``) and, with ``run``,
    every ``interval`` seconds."""

    def __init__(
        self,
        registry: Registry,
        make_ctx: Callable[[ProviderEntry], ProviderContext],
        *,
        timeout: float,
    ) -> None:
        self.registry = registry
        self.make_ctx = make_ctx
        self.timeout = timeout
        self._running: dict[str, asyncio.Task[errors.G4FError | None]] = {}

    def check(self, entry: ProviderEntry) -> asyncio.Task[errors.G4FError | None]:
        """The provider's check in flight, started now if none is."""
        task = self._running.get(entry.name)
        if task is None or task.done():
            task = asyncio.create_task(probe(entry, self.make_ctx(entry), self.timeout))
            self._running[entry.name] = task
        return task

    async def check_all(self) -> dict[str, errors.G4FError | None]:
        """Check every probeable provider now, concurrently; name -> its failure, None
        when it passed."""
        entries = [e for e in self.registry.ordered if probeable(e)]
        results = await asyncio.gather(*(self.check(e) for e in entries))
        return {e.name: failure for e, failure in zip(entries, results, strict=True)}

    async def run(self, interval: float) -> None:
        """Check each provider every ``interval`` seconds, the providers spread over it.
        Runs until cancelled."""
        entries = [e for e in self.registry.ordered if probeable(e)]
        loops = [
            self._every(entry, interval, interval * i / len(entries))
            for i, entry in enumerate(entries)
        ]
        try:
            await asyncio.gather(*loops)
        finally:  # the app is stopping: no probe outlives it
            running = list(self._running.values())
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _every(self, entry: ProviderEntry, interval: float, offset: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + offset
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            with contextlib.suppress(Exception):  # probe() records its failures itself
                await asyncio.shield(self.check(entry))
            # The next slot, skipping those a slow probe ran over: never two at once.
            due += interval * max(1, -(-(loop.time() - due) // interval))


PROBER: web.AppKey[Prober] = web.AppKey("prober")  # the app's checks (app.py)
