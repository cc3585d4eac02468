"""The operator's controls wired into the app: keys, rate limits, metrics and demo mode,
and the observers they install on the pipeline (``pipeline/observers.py``). Each is
installed only when configured, so a server without them pays nothing for them on the
hot path."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import istr

from g4f_server import errors
from g4f_server.appkeys import KEY_NAME, SERVED_BY
from g4f_server.config import AppConfig, ConfigError
from g4f_server.controls import demo, limits
from g4f_server.controls.apikeys import KEYRING, KeyRing
from g4f_server.controls.tracked import current
from g4f_server.pipeline import scope
from g4f_server.pipeline.observers import OBSERVERS, Observers
from g4f_server.pipeline.transcript import estimate_prompt_tokens
from g4f_server.providers.model_table import ModelTable
from g4f_server.storage import factory

if TYPE_CHECKING:
    from g4f_server.controls.metrics import Metrics
    from g4f_server.pipeline.transcript import Transcript
    from g4f_server.requests import ChatRequest


@dataclass(slots=True)
class Active:
    """Which controls this app has, looked up once per hook (one app key, always set)
    instead of one ``key in app`` per control: a missing key costs a KeyError inside."""

    keyring: KeyRing | None = None
    limits: limits.RateLimits | None = None
    metrics: Metrics | None = None
    demo: bool = False
    # Metrics or limits keep a ``Controlled`` per request (tracked.py); set once by
    # ``setup`` (a property was a call per hook).
    tracked: bool = False
    # Tokens a chat request without max_tokens is counted for (limits_completion_estimate).
    completion_estimate: int = 1024


ACTIVE = web.AppKey("controls", Active)
# What the controls add to every answer as it is prepared (rate-limit headers, the
# streams gauge): a plain call the edge's one on_response_prepare receiver makes (a
# receiver of its own was one more coroutine per answer). Set only when tracked.
ON_PREPARE: web.AppKey[Callable[[web.Request, web.StreamResponse], None]] = web.AppKey(
    "controls_on_prepare"
)
# What the controls do as a request reaches the edge, before anything else (the metrics'
# clock and the request's state; the public /metrics answered without the key): a plain
# call that returns an answer to send as it is, or None. And when the edge is done with
# it (the metrics' count and latency, the streams gauge, the limits' slots given back):
# a plain call with the answer the edge returned, or None when it raised. Both are made
# by the edge (web/middleware.py); the metrics middleware around the edge was a
# coroutine every wake-up of the request passed through. Set only when metrics are on.
ON_START: web.AppKey[Callable[[web.Request], web.StreamResponse | None]] = web.AppKey(
    "controls_on_start"
)
ON_DONE: web.AppKey[Callable[[web.Request, web.StreamResponse | None], None]] = web.AppKey(
    "controls_on_done"
)
# The rate limits' admission as the edge's plain call after the key check (with the key's
# name), where their middleware ran: set only on the in-memory counters with metrics on,
# whose on_done gives back what a request holds. The middleware (a functools.partial and
# a frame per request, and the key name read back from the request) is then not
# installed; a shared limiter's calls are awaited, and without metrics nothing outside it
# would settle, so those keep it.
ON_ADMIT: web.AppKey[Callable[[web.Request, str | None], None]] = web.AppKey("controls_on_admit")
_CONTENT_TYPE = istr("Content-Type")


def check(config: AppConfig) -> None:
    """Raise ConfigError for a config-file table that does not make sense (the CLI
    shows the message instead of a traceback)."""
    _keyring(config)
    _trusted(config)
    _limits(config)
    unknown = sorted(set(config.emulate) - {"tools", "json"})
    if unknown:
        raise ConfigError(
            f"emulate (G4F_EMULATE) knows tools and json, not {', '.join(unknown)}"
            + (" (stop sequences are always cut by the kernel)" if "stop" in unknown else "")
        )
    try:
        ModelTable.build(config.models)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _keyring(config: AppConfig) -> KeyRing | None:
    try:
        return KeyRing.build(config.api_key, config.keys)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _trusted(config: AppConfig) -> scope.Networks:
    try:
        return scope.parse_trusted(config.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"trusted_proxies (G4F_TRUSTED_PROXIES): {exc}") from None


def _limits(config: AppConfig, app: web.Application | None = None) -> limits.RateLimits | None:
    """The rate limits (None when none are set); with ``app``, on its storage backend."""
    shared = factory.make_limiter(app, config) if app is not None else None
    try:
        return limits.parse_limits(
            shared or limits.MemoryLimiter(),
            config.limits,
            config.keys,
            config.trusted_proxies,
            config.limits_fail_closed,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _admits_in_edge(config: AppConfig) -> bool:
    """The limits admit through the edge's call (``ON_ADMIT``), not a middleware: their
    counters are in memory and the metrics settle what a request holds."""
    return config.metrics and not config.state_url


def middlewares(config: AppConfig) -> list[Any]:
    """The middlewares after the kernel's (which checks the key and maps errors)."""
    out: list[Any] = []
    if _limits(config) is not None and not _admits_in_edge(config):
        out.append(limits.limits_middleware())
    return out


def setup(app: web.Application, config: AppConfig) -> None:
    active = app[ACTIVE] = Active()
    keyring = active.keyring = _keyring(config)
    if keyring is not None:
        app[KEYRING] = keyring
    app[scope.TRUSTED] = _trusted(config)
    active.demo = config.demo
    active.completion_estimate = config.limits_completion_estimate
    if config.metrics:
        from g4f_server.controls import metrics

        app[metrics.METRICS] = active.metrics = metrics.Metrics(app, config.metrics_public)
    rate_limits = _limits(config, app)
    if rate_limits is not None:
        rate_limits.after_metrics = active.metrics is not None
        if active.metrics is not None:
            active.metrics.limited = True
        app[limits.LIMITS] = active.limits = rate_limits
        if _admits_in_edge(config):  # on the in-memory counters: no state URL
            app[ON_ADMIT] = limits.admit_in_edge(rate_limits)
    if active.metrics is not None:  # after ``limited`` is known; both called by the edge
        app[ON_START] = metrics.on_start(active.metrics)
        app[ON_DONE] = metrics.on_done(active.metrics)
    active.tracked = active.metrics is not None or active.limits is not None
    if active.tracked:
        app[ON_PREPARE] = _on_prepare(active)  # called by the edge (web/middleware.py)
    app[OBSERVERS] = observers(active)


def _on_prepare(active: Active) -> Callable[[web.Request, web.StreamResponse], None]:
    """What the controls do as an answer is prepared, made once: whether streams are
    counted is decided here, and the answer's headers are read once."""
    live = active.metrics.live if active.metrics is not None else None

    def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        """The rate-limit headers, and a streamed answer starting (the streams-in-progress
        gauge)."""
        state = current()
        if state is None:  # an open path (limits only), or /metrics itself
            return
        headers = response.headers
        if state.rates is not None:  # a limits.Ticket's
            limits.rate_headers(state, headers)  # type: ignore[arg-type]
        if (
            live is not None
            and not state.streaming
            and headers.get(_CONTENT_TYPE, "").startswith("text/event-stream")
        ):
            state.streaming = True  # the metrics count it down when it ends (on_done)
            live.streams += 1

    return on_prepare


_BUDGETED: dict[type, bool] = {}  # a request model -> has it a token budget


def _has_budget(body: Any) -> bool:
    """A chat request (media requests have none): ``hasattr`` on the class, once per
    class; on the instance it ran the ``token_limit`` property, read again just after."""
    kind = type(body)
    found = _BUDGETED.get(kind)
    if found is None:
        found = _BUDGETED[kind] = hasattr(kind, "token_limit")
    return found


def _admitted(active: Active) -> Callable[[web.Request, Any], Awaitable[None]] | None:
    """The ``admitted`` observer of this app's controls, or None when none looks at the
    body: what is off is decided here once, and the hook reads no app key."""
    demo_on, rate_limits, completion = active.demo, active.limits, active.completion_estimate
    keyring = active.keyring if active.keyring is not None and active.keyring.allowed else None
    if not (demo_on or keyring is not None or rate_limits is not None):
        return None

    async def admitted(request: web.Request, body: Any) -> None:
        """The body names its public model (and maybe a provider key or a proxy): demo
        mode's refusals, may this key use the model, and the model's rate limits."""
        if demo_on:
            demo.check_body(body)
        model = body.model or ""
        if keyring is not None:
            keyring.check_model(request.get(KEY_NAME), model)
        if rate_limits is None:
            return
        ticket = current()
        if type(ticket) is not limits.Ticket or ticket.limiter is None:
            return  # not admitted by the limits middleware (a path it does not count)
        try:
            if rate_limits.models:
                await limits.admit_model(rate_limits, ticket, model)
            # A chat request (media requests have no token budget), told by an attribute:
            # importing the request models here would load pydantic at start-up.
            if ticket.token_keys is None:
                return
            budgeted = _BUDGETED.get(type(body))  # _has_budget, inlined
            if budgeted is None:
                budgeted = _has_budget(body)
            if budgeted:
                estimate = estimate_prompt_tokens(body) + (body.token_limit or completion)
                if not limits.reserve_tokens_now(ticket, estimate):
                    await limits.reserve_tokens(rate_limits, ticket, estimate)
        except errors.RateLimitError as exc:
            # The metrics count the refusal's kind; the limits middleware may not be a
            # frame around the handler to see it pass (limits_middleware).
            ticket.limited = getattr(exc, "kind", "requests")
            raise

    return admitted


def _admitted_now(active: Active) -> Callable[[web.Request, Any], None] | None:
    """``admitted`` as a plain call, when nothing in it ever awaits: no rate limits, or
    limits on the in-memory counters (a shared limiter's are network calls). A chat turn
    then needs no coroutine of its own before the provider is called (``start_turn``'s
    quick way), which a coroutine here forced on every request of a keyed, limited
    server. The same checks in the same order as ``_admitted``'s (change both)."""
    demo_on, rate_limits, completion = active.demo, active.limits, active.completion_estimate
    keyring = active.keyring if active.keyring is not None and active.keyring.allowed else None
    if not (demo_on or keyring is not None or rate_limits is not None):
        return None
    if rate_limits is not None and type(rate_limits.limiter) is not limits.MemoryLimiter:
        return None

    # The body's model is read only where a control looks at it (a pydantic attribute read
    # takes the slow path): a key's allowed models, the models' own limits.
    models = rate_limits is not None and bool(rate_limits.models)

    def admitted_now(request: web.Request, body: Any) -> None:
        if demo_on:
            demo.check_body(body)
        if keyring is not None:
            keyring.check_model(request.get(KEY_NAME), body.model or "")
        if rate_limits is None:
            return
        ticket = current()
        # Admitted by the limits (else a path they do not count); on this
        # backend its ticket always counts in memory (``Ticket.local``).
        if type(ticket) is not limits.Ticket or ticket.local is None:
            return
        try:
            if models:
                limits.admit_model_now(rate_limits, ticket, body.model or "")
            if ticket.token_keys is None:
                return
            budgeted = _BUDGETED.get(type(body))  # _has_budget, inlined
            if budgeted is None:
                budgeted = _has_budget(body)
            if budgeted:
                # ChatRequest.token_limit from the fields: on a pydantic model a property
                # is a frame and each attribute read inside it takes the slow path.
                fields = body.__dict__
                limit = fields["max_completion_tokens"] or fields["max_tokens"]
                limits.reserve_tokens_now(
                    ticket, estimate_prompt_tokens(body) + (limit or completion)
                )
        except errors.RateLimitError as exc:
            ticket.limited = getattr(exc, "kind", "requests")  # as _admitted's
            raise

    return admitted_now


def _finished(active: Active) -> Callable[[web.Request, Transcript, ChatRequest], Any]:
    """The ``finished`` observer of this app's controls, made once: with the metrics'
    token counts in hand (``Metrics.tokens`` inlined) and no metrics lookups per answer.
    A plain call that returns what is left to await (a shared limiter's charge) or None:
    on the memory backend nothing is, and a coroutine per answer was a frame for no
    wait."""
    tokens = active.metrics.live.tokens if active.metrics is not None else None

    def finished(
        request: web.Request, transcript: Transcript, chat: ChatRequest
    ) -> Awaitable[None] | None:
        """An answer is done: its tokens (the upstream's count, else an estimate) settle
        what was reserved against the tokens-per-minute limits, and count in the
        metrics."""
        ticket: Any = current()  # a limits.Ticket when it reserved tokens
        charging = ticket.token_keys is not None
        if tokens is None and not charging:
            return None
        usage = transcript.usage
        if usage is not None:  # the upstream's count: token_counts without its frame
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
        else:
            prompt, completion, _ = transcript.token_counts(chat)
        if tokens is not None:
            try:  # not .get(): one Python frame less
                provider = request[SERVED_BY][0]
            except KeyError:
                provider = ""
            counts = tokens.get(provider)
            if counts is None:
                counts = tokens[provider] = [0, 0]
            counts[0] += prompt
            counts[1] += completion
        if charging and not ticket.charge_now(prompt + completion):
            return ticket.charge_tokens(prompt + completion)  # type: ignore[no-any-return]
        return None

    return finished


def _first_token(metrics: Metrics) -> Callable[[web.Request, str], None]:
    """The ``first_token`` observer (time to first token), made once per app with the
    histograms at hand: ``_Histogram.observe`` inlined, no metrics lookups per answer."""
    from g4f_server.controls.metrics import _LATENCY_BUCKETS

    histograms = metrics.live.first_token

    def first_token(request: web.Request, provider: str) -> None:
        started = current().started  # type: ignore[union-attr]
        seconds = perf_counter() - started
        histogram = histograms.get(provider)
        if histogram is None:
            metrics.first_token(started, provider)
        else:
            histogram.counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
            histogram.total += seconds

    return first_token


def cache_verdict(request: web.Request, verdict: str) -> None:
    """Observer: the response cache's hit, miss or bypass, counted."""
    metrics = request.app[ACTIVE].metrics
    if metrics is not None:
        metrics.inc(metrics.cache, verdict)


def observers(active: Active) -> Observers:
    """What the controls of this app watch in a turn: only the points some control
    needs, so a server without controls runs none of them."""
    return Observers(
        admitted=_admitted(active),
        admitted_now=_admitted_now(active),
        cache_verdict=cache_verdict if active.metrics is not None else None,
        first_token=_first_token(active.metrics) if active.metrics is not None else None,
        finished=_finished(active) if active.tracked else None,
    )
