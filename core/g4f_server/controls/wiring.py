"""The operator's controls wired into the app: keys, rate limits (and, in their own
modules, CORS, the cache, metrics). Each is installed only when configured, so a server
without them pays nothing for them on the hot path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import istr

from g4f_server.appkeys import CONTROLLED, KEY_NAME, KEYRING, SERVED_BY
from g4f_server.config import AppConfig, ConfigError
from g4f_server.controls import limits
from g4f_server.controls.apikeys import KeyRing
from g4f_server.pipeline import cache
from g4f_server.providers.model_table import ModelTable
from g4f_server.web import cors

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
    cache: bool = False

    @property
    def tracked(self) -> bool:
        """Metrics or limits keep a ``Controlled`` per request (appkeys.py)."""
        return self.metrics is not None or self.limits is not None


ACTIVE = web.AppKey("controls", Active)
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


def _trusted(config: AppConfig) -> limits.Networks:
    try:
        return limits.parse_trusted(config.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"trusted_proxies (G4F_TRUSTED_PROXIES): {exc}") from None


def make_cache(config: AppConfig) -> cache.ResponseCache:
    """The response cache's backend: in this process, or on Redis with a state URL."""
    if config.state_url:
        from g4f_server.storage.redis.state import RedisCache

        return RedisCache(config)
    return cache.MemoryCache(config.cache_max_bytes)


def make_limiter(config: AppConfig) -> limits.Limiter:
    """The counters' backend: in this process, or on Redis with a state URL."""
    if config.state_url:
        from g4f_server.storage.redis.limits import RedisLimiter

        return RedisLimiter(config)
    return limits.MemoryLimiter()


def _limits(config: AppConfig) -> limits.RateLimits | None:
    try:
        return limits.parse_limits(
            make_limiter(config), config.limits, config.keys, config.trusted_proxies
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def outer_middlewares(config: AppConfig) -> list[Any]:
    """The middlewares before the kernel's: metrics (outermost: it times everything),
    then CORS, which answers preflights before the key check."""
    out: list[Any] = []
    if config.metrics:
        from g4f_server.controls.metrics import metrics_middleware

        out.append(metrics_middleware)
    out.append(cors.cors_middleware)
    return out


def middlewares(config: AppConfig) -> list[Any]:
    """The middlewares after the kernel's (which checks the key and maps errors)."""
    out: list[Any] = []
    if _limits(config) is not None:
        out.append(limits.limits_middleware)
    return out


def setup(app: web.Application, config: AppConfig) -> None:
    active = app[ACTIVE] = Active()
    keyring = active.keyring = _keyring(config)
    if keyring is not None:
        app[KEYRING] = keyring
    app[limits.TRUSTED] = _trusted(config)
    app[cors.CORS] = cors.CorsPolicy.build(
        config.cors_origins, has_key=keyring is not None, bind=config.host
    )
    app.on_response_prepare.append(cors.cors_headers)
    if config.cache_ttl > 0:
        backend = make_cache(config)
        app[cache.CACHE] = cache.CacheSettings(backend, config.cache_ttl)
        active.cache = True
        close = getattr(backend, "close", None)
        if close is not None:  # a shared backend's client (Redis)
            app.on_cleanup.append(lambda _, close=close: close())
    if config.metrics:
        from g4f_server.controls import metrics

        app[metrics.METRICS] = active.metrics = metrics.Metrics(app, config.metrics_public)
    rate_limits = _limits(config)
    if rate_limits is not None:
        rate_limits.after_metrics = active.metrics is not None
        app[limits.LIMITS] = active.limits = rate_limits
        close = getattr(rate_limits.limiter, "close", None)
        if close is not None:  # a shared backend's client (Redis)
            app.on_cleanup.append(lambda _, close=close: close())
    if active.tracked:
        app.on_response_prepare.append(on_prepare)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the rate-limit headers, and a streamed answer starting (the
    streams-in-progress gauge). One callback for both: each is a coroutine per answer."""
    state = request.get(CONTROLLED)
    if state is None:  # an open path (limits only), or /metrics itself
        return
    if state.ticket is not None and state.ticket.rates is not None:
        limits.rate_headers(state.ticket, response.headers)
    if (
        state.metrics is not None
        and not state.streaming
        and response.headers.get(_CONTENT_TYPE, "").startswith("text/event-stream")
    ):
        state.streaming = True  # the metrics middleware counts it down when it ends
        state.metrics.live.streams += 1


async def admit_model(request: web.Request, model: str) -> None:
    """Once the body names the public model: may this key use it, and the model's limits."""
    active = request.app[ACTIVE]
    keyring = active.keyring
    if keyring is not None and keyring.allowed:
        keyring.check_model(request.get(KEY_NAME), model)
    if active.tracked:
        state = request[CONTROLLED]
        state.public_model = model
        rate_limits = active.limits
        if rate_limits is not None and rate_limits.models and state.ticket is not None:
            await limits.admit_model(rate_limits, state.ticket, model)


async def finished(request: web.Request, transcript: Transcript, chat: ChatRequest) -> None:
    """An answer is done: its tokens (the upstream's count, else an estimate) count
    against the tokens-per-minute limits and in the metrics."""
    if not request.app[ACTIVE].tracked:
        return
    state = request[CONTROLLED]
    ticket, metrics = state.ticket, state.metrics
    charging = ticket is not None and ticket.token_keys is not None
    if metrics is not None or charging:
        prompt, completion, _ = transcript.token_counts(chat)
        if charging and not ticket.charge_now(prompt + completion):
            await ticket.charge_tokens(prompt + completion)
        if metrics is not None:
            metrics.tokens(request.get(SERVED_BY, ("",))[0], prompt, completion)


def first_token(request: web.Request, provider: str) -> None:
    """The provider's first part of the answer arrived (time to first token)."""
    if request.app[ACTIVE].metrics is not None:
        state = request[CONTROLLED]
        state.metrics.first_token(state.started, provider)


async def cache_lookup(request: web.Request, chat: ChatRequest) -> Any:
    """The response cache's verdict on a chat request (cache.py); None when it is off."""
    active = request.app[ACTIVE]
    if not active.cache:
        return None
    found = await cache.lookup(request, chat, request.get(KEY_NAME, ""))
    if active.metrics is not None:
        active.metrics.inc(active.metrics.cache, found.state)
    return found


async def cache_store(turn: Any, transcript: Transcript) -> None:
    await cache.store(turn.request, turn.cache_key, turn.provider, turn.model, transcript)
