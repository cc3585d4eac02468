"""Providers defined in the tests: plain objects implementing the hooks, no network.

``Scripted`` answers from a script and records every request it saw, so tests can check
what the router and the kernel handed it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from g4f_server import errors, events, hookimpl
from g4f_server.provider import ModelInfo, ProviderContext, ProviderInfo
from g4f_server.requests import ChatRequest


@dataclass
class Seen:
    model: str
    messages: list[dict[str, Any]]
    conversation: dict[str, Any] | None
    conversation_id: str | None
    api_key: str | None
    request_id: str
    request: ChatRequest | None = None  # the whole request, for fields beyond messages
    temperature: float | None = None


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Scripted:
    """A chat provider. ``fail`` makes it raise before its first event, ``fail_after``
    after that many text chunks; ``usage`` makes it report token counts."""

    name: str = "Echo"
    models: list[ModelInfo] = field(
        default_factory=lambda: [
            ModelInfo("echo-1", frozenset({"chat", "tools", "vision"}), aliases=("gpt-4o-mini",)),
            ModelInfo("thinker", frozenset({"chat", "reasoning"})),
            ModelInfo("plain", frozenset({"chat"})),
        ]
    )
    priority: int = 100
    fail: errors.G4FError | Exception | None = None
    fail_after: int | None = None
    # Stands in for a built-in plugin: reached by gpt-4o & co. (False: a third party's).
    public_names: bool = True
    usage: bool = False
    delay: float = 0.0
    seen: list[Seen] = field(default_factory=list)

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            label=f"{self.name} Labs",
            url="https://example.invalid",
            priority=self.priority,
            default_model=self.models[0].id,
            public_names=self.public_names,
        )

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        return self.models

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatEvent]:
        self.seen.append(
            Seen(
                model=request.model,
                messages=[m.model_dump(exclude_none=True) for m in request.messages],
                conversation=ctx.conversation,
                conversation_id=ctx.conversation_id,
                api_key=ctx.api_key,
                request_id=ctx.request_id,
                request=request,
                temperature=request.temperature,
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None and self.fail_after is None:
            raise self.fail
        if request.model == "thinker":
            yield events.ReasoningDelta("Let me think. ")
        if request.tools and request.messages[-1].role != "tool":
            tool = request.tools[0].function
            assert tool is not None
            args = json.dumps({"echo": request.messages[-1].text()})
            yield events.ToolCallDelta(0, id="call_1", name=tool.name, arguments=args[:5])
            yield events.ToolCallDelta(0, arguments=args[5:])
            yield events.Finish("tool_calls")
            return
        text = request.messages[-1].text()
        if request.messages[-1].role == "tool":
            text = f"tool said {text}"
        words = ["echo:", *text.split(" ")]
        if request.response_format and request.response_format.type == "json_object":
            words = json.dumps({"echo": text}).split(" ")
        turn = (ctx.conversation or {}).get("turn", 0) + 1
        for i, word in enumerate(words):
            if self.fail_after is not None and i == self.fail_after:
                raise self.fail or errors.ProviderError("upstream dropped the connection")
            yield events.TextDelta(word if i == 0 else " " + word)
        if self.usage:
            yield events.Usage(prompt_tokens=11, completion_tokens=len(words))
        yield events.ConversationState({"turn": turn})
        yield events.Finish("stop")


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Batched:
    """Answers with ``items`` as given: lists of events (what arrived together) or single
    events. Before an item that is the string ``"wait"`` it waits for ``gate``; an
    exception item is raised there."""

    items: list[Any]
    name: str = "Batcher"
    priority: int = 100
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    headers: dict[str, str] = field(default_factory=dict)  # set as ctx.response_headers

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name, priority=self.priority, default_model="batch-1", public_names=True
        )

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("batch-1")]

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatItem]:
        ctx.response_headers.update(self.headers)
        for item in self.items:
            if item == "wait":
                await self.gate.wait()
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class InfoOnly:
    """A provider with no service hooks at all."""

    name: str = "Empty"

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, public_names=True)


class BrokenInfo:
    @hookimpl
    def provider_info(self) -> ProviderInfo:
        raise RuntimeError("cannot describe myself")


class Typo:
    """Implements a hook name that is not in the spec (a typo of list_models)."""

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name="Typo")

    @hookimpl
    async def list_model(self) -> list[ModelInfo]:
        return []


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class FailingLister(Scripted):
    """Its model listing fails (e.g. the upstream is unreachable at start-up)."""

    name: str = "Lister"

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        raise ConnectionError("upstream unreachable")


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Endless(Scripted):
    """Streams until closed; records that its generator was closed (client hung up)."""

    name: str = "Endless"
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatEvent]:
        try:
            while True:
                self.sent += 1
                yield events.TextDelta(f"tick {self.sent} ")
                await asyncio.sleep(0.01)
        finally:
            self.closed.set()


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class LoginAware(Scripted):
    """Reports its login state from the cookies the user uploaded."""

    name: str = "Login"

    @hookimpl
    def auth_status(self, ctx: ProviderContext) -> dict[str, Any]:
        return {"logged_in": False, "detail": "upload cookies to log in"}


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Probed(Scripted):
    """Has a ``probe`` hook of its own: fails with ``probe_fail`` when set, and counts
    its calls and how many ran at once."""

    name: str = "Probed"
    probe_fail: errors.G4FError | None = None
    probe_delay: float = 0.0
    probes: int = 0
    in_flight: int = 0
    most_in_flight: int = 0

    @hookimpl
    async def probe(self, ctx: ProviderContext) -> None:
        self.probes += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.probe_delay)
            if self.probe_fail is not None:
                raise self.probe_fail
        finally:
            self.in_flight -= 1


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class CookieProbe(Scripted):
    """Calls ``url`` through the shared session and answers with the Cookie header it sent."""

    name: str = "Probe"
    url: str = ""

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatEvent]:
        async with ctx.http.get(self.url) as resp:
            yield events.TextDelta(await resp.text())


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Gated(Scripted):
    """Sends one chunk, then waits for the test to release the rest: proves that a chunk
    reaches the client before the provider produces the next one (no buffering)."""

    name: str = "Gated"
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatEvent]:
        yield events.TextDelta("first")
        await self.release.wait()
        yield events.TextDelta(" second")


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Relays:
    """A plugin that registers one ``Scripted`` provider per name in the settings'
    ``upstreams`` (as the openai_compat plugin does), and refuses a name it is told to."""

    name: str = "relays"
    refuse: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)

    @hookimpl
    def providers(self, settings: Any) -> list[object]:
        self.received.append(dict(settings))
        upstreams = settings["upstreams"]
        if self.refuse in upstreams:
            raise ValueError(f"upstream {self.refuse!r} needs {self.refuse.upper()}_API_KEY")
        return [
            Scripted(name=name.title(), models=[ModelInfo(f"{name}-model")]) for name in upstreams
        ]


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Ponderer(Scripted):
    """Answers with reasoning only (a model that thought and said nothing), as upstreams
    that put everything in ``reasoning_content`` do."""

    name: str = "Ponderer"

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatEvent]:
        yield events.ReasoningDelta("Let me think about it. ")
        yield events.ReasoningDelta("Still thinking.")
        yield events.Finish("stop")
