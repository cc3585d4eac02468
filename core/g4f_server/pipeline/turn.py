"""The chat pipeline every wire protocol shares.

    parse (the protocol) -> ``start_turn``: conversation history, resolve, ``start_chat``
    failover -> ``collect`` (or the protocols' ``streaming.stream``): batches of events
    into a ``Transcript`` -> ``ChatTurn.complete``: the transcript is stored -> the
    protocol renders the body.

A protocol (``protocols/``) turns its wire request into a ``ChatRequest`` and renders the
events, the final body and errors in its own shape; everything else is here, once, and
knows no wire. Two seams: ``start_turn`` is where every chat request enters,
``ChatTurn.complete`` where every finished answer is stored (conversation state and
history, plus what the protocol keeps, e.g. a stored Responses object). The operator's
controls watch both through ``observers``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG, KEY_NAME, REQUEST_ID
from g4f_server.logs import get_logger
from g4f_server.pipeline import cache, emulation, stops
from g4f_server.pipeline.cache import HEADER as CACHE_HEADER
from g4f_server.pipeline.dispatch import (
    ChatRun,
    answers,
    answers_visibly,
    replay,
    served_headers,
    start_chat,
)
from g4f_server.pipeline.history import remember_turn, with_history
from g4f_server.pipeline.observers import OBSERVERS, Observers
from g4f_server.pipeline.scope import anonymous_client, conversation_key, provider_key
from g4f_server.pipeline.transcript import Transcript
from g4f_server.provider import ProviderContext
from g4f_server.providers.context import call_context
from g4f_server.providers.registry import REGISTRY, ProviderEntry, Registry, Route
from g4f_server.providers.router import resolve
from g4f_server.requests import CONVERSATION_ID_MAX, ChatRequest
from g4f_server.storage.interfaces import CONVERSATIONS, ConversationStore

if TYPE_CHECKING:
    from g4f_server.config import AppConfig

log = get_logger("g4f_server.chat")

Keep = Callable[[Transcript], Awaitable[None]]
Finished = Callable[[web.Request, Transcript, ChatRequest], Awaitable[None] | None]


@dataclass(slots=True)
class ChatTurn:
    """A chat request a provider has started answering."""

    request: web.Request
    chat: ChatRequest  # as the provider received it (stored history in front)
    run: ChatRun
    headers: dict[str, str]  # served-by headers for the response
    conversation_id: str | None
    store: ConversationStore | None  # the conversations' (None: no conversation to keep)
    conv_key: str | None
    keep: Keep | None  # what the protocol stores besides the conversation
    timeout: float  # the server's limit for a whole answer that is not streamed (collect)
    cache_key: str | None = None  # where the finished answer goes in the response cache
    # The controls' ``finished`` observer, read once when the turn starts (observers.py).
    finished: Finished | None = None

    @property
    def provider(self) -> str:
        return self.run.route.entry.name

    @property
    def model(self) -> str:
        return self.run.route.model

    @property
    def completes(self) -> bool:
        """Whether ``complete`` has anything to do: a conversation to store, the
        protocol's own store, a control counting the answer or the response cache. Most
        turns have none of them, and then no coroutine is made for it."""
        return (
            self.conv_key is not None
            or self.keep is not None
            or self.finished is not None
            or self.cache_key is not None
        )

    async def complete(self, transcript: Transcript) -> None:
        """Store the finished answer before the client sees its end, so that the client's
        next request (on any connection) finds it. A store failure is logged: the answer
        itself is complete and is delivered; but when the shared state store is away
        (``StateUnavailableError``) the answer fails instead, so that no turn a client
        saw completed is missing from the store."""
        try:
            if self.conv_key and self.store is not None:
                if transcript.state is not None:
                    await self.store.save(self.conv_key, self.provider, transcript.state)
                await remember_turn(self.store, self.conv_key, self.chat, transcript)
            if self.keep is not None:
                await self.keep(transcript)
        except (errors.StateUnavailableError, errors.PayloadTooLargeError):
            raise  # the client asked for it stored: not stored is not completed
        except Exception as exc:
            log.error("conversation_not_saved", provider=self.provider, exc_info=exc)
        finished = self.finished
        if finished is not None:
            pending = finished(self.request, transcript, self.chat)
            if pending is not None:  # only what needs a wait (observers.py)
                await pending
        if self.cache_key is not None:
            await cache.store(self.request, self.cache_key, self.provider, self.model, transcript)


def start_turn(
    request: web.Request,
    chat: ChatRequest,
    *,
    keep: Keep | None = None,
    shows_reasoning: bool = True,
) -> Awaitable[ChatTurn]:
    """Where every chat request enters: conversation history, provider resolution and
    failover until a provider yields its first part of the answer (reasoning does not
    count for a protocol that cannot show it: ``shows_reasoning=False``); await it.

    Most requests need nothing awaited before the provider is called (no control looks
    at the body, no conversation, no response cache, nothing to emulate): for them the
    awaitable is ``start_chat`` itself, which makes the turn when the answer begins, so
    that the provider's request is resumed through one frame of ours instead of two.
    The others take ``_start_turn``, the same steps with their awaits."""
    app = request.app
    match_info = request.match_info
    provider = match_info.get("provider") or chat.provider
    conversation_id = match_info.get("conversation_id") or chat.conversation_id
    observers = app[OBSERVERS]
    admitted_now = observers.admitted_now
    if (
        conversation_id
        or (observers.admitted is not None and admitted_now is None)
        or app[cache.CACHE] is not None
    ):
        return _start_turn(request, chat, keep, shows_reasoning, provider, conversation_id)
    if admitted_now is not None:  # keys, limits, demo mode, nothing awaited (controls/)
        admitted_now(request, chat)
    config = app[CONFIG]
    if chat.proxy and not config.allow_request_proxy:
        raise _proxy_not_allowed()
    key = provider_key(request, chat.api_key)
    try:  # _chat_routes, in line
        routes = resolve(
            app[REGISTRY],
            config,
            capability="chat",
            model=chat.model,
            provider=provider,
            needs=chat.needed_capabilities(),
        )
    except errors.UnsupportedCapabilityError:
        return _start_turn(
            request, chat, keep, shows_reasoning, provider, conversation_id, admitted=True
        )
    try:  # not request.get(): two Python frames
        request_id = request[REQUEST_ID]
    except KeyError:
        request_id = ""
    # Partials, not closures: no cells for this frame's variables, no frame of their own.
    return start_chat(
        routes,
        chat,
        partial(call_context, app, request_id, key, chat.proxy, None, None),
        first_event_timeout=config.timeout,
        idle_timeout=config.stream_timeout,
        counts=answers if shows_reasoning else answers_visibly,
        then=partial(_started, request, chat, request_id, keep, observers, config),
    )


def _started(
    request: web.Request,
    chat: ChatRequest,
    request_id: str,
    keep: Keep | None,
    observers: Observers,
    config: AppConfig,
    run: ChatRun,
) -> ChatTurn:
    """The turn of ``start_turn``'s quick way, made when the answer begins. It has no
    conversation, so no store (an app-key read less per request)."""
    if observers.first_token is not None:
        observers.first_token(request, run.route.entry.name)
    headers = served_headers(request, run.route, run.attempts, run.ctx, request_id or None)
    if chat.stop and run.cut_at(chat.stop):  # the model may ignore `stop`
        headers[emulation.HEADER] = stops.KIND
    return ChatTurn(
        request, chat, run, headers, None, None, None, keep,
        config.timeout, None, observers.finished,
    )  # fmt: skip


def _proxy_not_allowed() -> errors.InvalidRequestError:
    return errors.InvalidRequestError(
        "The 'proxy' field is disabled on this server; the operator can enable it "
        "with --allow-request-proxy",
        param="proxy",
        code="proxy_not_allowed",
    )


async def _start_turn(
    request: web.Request,
    chat: ChatRequest,
    keep: Keep | None,
    shows_reasoning: bool,
    provider: str | None,
    conversation_id: str | None,
    admitted: bool = False,  # the quick way already ran ``admitted_now``
) -> ChatTurn:
    """``start_turn`` with what it awaits before the provider is called: the controls'
    ``admitted``, the conversation's history and states, the response cache, emulation.
    ``start_turn``'s quick way repeats this one's proxy check, routing and making of the
    turn (``_started``) for the requests that await none of these: change both."""
    app = request.app
    config = app[CONFIG]
    if conversation_id and len(conversation_id) > CONVERSATION_ID_MAX:  # the path's is unchecked
        raise errors.InvalidRequestError(
            f"conversation_id is longer than {CONVERSATION_ID_MAX} characters",
            param="conversation_id",
            code="conversation_id_too_long",
        )
    observers = app[OBSERVERS]
    if observers.admitted is not None and not admitted:  # keys, limits, demo (controls/)
        await observers.admitted(request, chat)
    if chat.proxy and not config.allow_request_proxy:
        raise _proxy_not_allowed()
    store = app[CONVERSATIONS]
    key = provider_key(request, chat.api_key)
    # Scoped store key of the client's id (see scope.conversation_key).
    conv_key = None
    if conversation_id:
        conv_key = conversation_key(
            request.headers,
            conversation_id,
            provider_key=key,
            user=chat.user,
            client=anonymous_client(request),
        )
        chat = await with_history(store, conv_key, chat)

    registry = app[REGISTRY]
    emulating = None
    try:
        routes = _chat_routes(registry, config, chat, provider)
    except errors.UnsupportedCapabilityError:
        # No target can do it natively: emulate what is allowed (emulation.py), if anything.
        emulating = emulation.plan(emulation.wanted(config.emulate, chat), chat)
        if emulating is None:
            raise
        chat = emulating.request
        routes = _chat_routes(registry, config, chat, provider)
    states: dict[str, Any] | None = None  # what each provider kept of the conversation
    if conv_key:
        states = {}
        for route in routes:
            states[route.entry.name] = await store.load(conv_key, route.entry.name)
    try:  # not request.get(): two Python frames
        request_id = request[REQUEST_ID]
    except KeyError:
        request_id = ""

    def ctx_for(entry: ProviderEntry) -> ProviderContext:
        state = states.get(entry.name) if states is not None else None
        return call_context(app, request_id, key, chat.proxy, conversation_id, state, entry)

    cached = None
    if (settings := app[cache.CACHE]) is not None:  # the response cache is on
        cached = await cache.lookup(request, chat, request.get(KEY_NAME, ""), settings)
        if cached.hit is not None:
            name, model, events = cached.hit
            entry = registry.get(name)
            if entry is not None:  # a hit, replayed as the answer
                hit = replay(Route(entry, model), 0, events, config.stream_timeout)
                if observers.cache_verdict is not None:
                    observers.cache_verdict(request, "hit")
                headers = served_headers(request, hit.route, 0)
                headers[CACHE_HEADER] = "hit"
                return ChatTurn(
                    request, chat, hit, headers, conversation_id, store, None, keep,
                    config.timeout, None, observers.finished,
                )  # fmt: skip
            cached.state = "miss"  # that provider is gone (uninstalled since)
        if observers.cache_verdict is not None:
            observers.cache_verdict(request, cached.state)
    counts = answers if shows_reasoning else answers_visibly
    run = await start_chat(
        routes,
        chat,
        ctx_for,
        first_event_timeout=config.timeout,
        idle_timeout=config.stream_timeout,
        counts=counts,
    )
    if observers.first_token is not None:
        observers.first_token(request, run.route.entry.name)
    emulated: tuple[str, ...] = ()
    if emulating is not None:

        async def retry(again: ChatRequest) -> ChatRun:
            return await start_chat(
                [run.route], again, ctx_for,
                first_event_timeout=config.timeout, idle_timeout=config.stream_timeout,
                counts=counts,
            )  # fmt: skip

        run = await emulation.answer(emulating, run, retry, config.timeout)
        emulated = emulating.kinds
    headers = served_headers(request, run.route, run.attempts, run.ctx, request_id or None)
    if chat.stop and run.cut_at(chat.stop):  # the model may ignore `stop`
        emulated += (stops.KIND,)
    if emulated:
        headers[emulation.HEADER] = ",".join(emulated)
    cache_key = None
    if cached is not None:
        headers[CACHE_HEADER] = cached.state
        cache_key = cached.key
    return ChatTurn(
        request, chat, run, headers, conversation_id, store, conv_key, keep,
        config.timeout, cache_key, observers.finished,
    )  # fmt: skip


def _chat_routes(
    registry: Registry, config: AppConfig, chat: ChatRequest, provider: str | None
) -> Sequence[Route]:
    return resolve(
        registry,
        config,
        capability="chat",
        model=chat.model,
        provider=provider,
        needs=chat.needed_capabilities(),
    )


def collect(turn: ChatTurn) -> Awaitable[Transcript]:
    """The whole answer (non-streamed), read within the server's timeout on the stream's
    own watchdog (one timer for both limits), then stored: ``ChatRun.read`` does both,
    so that reading a whole answer is one coroutine, not two."""
    complete = turn.complete if turn.completes else None
    return turn.run.read(Transcript(), turn.timeout, turn.request, complete)
