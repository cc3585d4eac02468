"""The operator's controls wired into the app: keys, rate limits (and, in their own
modules, CORS, the cache, metrics). Each is installed only when configured, so a server
without them pays nothing for them on the hot path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from g4f_server import cors, limits
from g4f_server.apikeys import KeyRing
from g4f_server.config import AppConfig, ConfigError
from g4f_server.keys import KEY_NAME, KEYRING
from g4f_server.model_table import ModelTable

if TYPE_CHECKING:
    from g4f_server.schemas.chat import ChatRequest
    from g4f_server.transcript import Transcript


def check(config: AppConfig) -> None:
    """Raise ConfigError for a config-file table that does not make sense (the CLI
    shows the message instead of a traceback)."""
    _keyring(config)
    _limits(config)
    try:
        ModelTable.build(config.models)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _keyring(config: AppConfig) -> KeyRing | None:
    try:
        return KeyRing.build(config.api_key, config.keys)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def make_limiter(config: AppConfig) -> limits.Limiter:
    """The counters' backend: in this process, or on Redis with a state URL."""
    if config.state_url:
        from g4f_server.storage.redis_limits import RedisLimiter

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
    """The middlewares before the kernel's: CORS answers preflights before the key check."""
    return [cors.cors_middleware]


def middlewares(config: AppConfig) -> list[Any]:
    """The middlewares after the kernel's (which checks the key and maps errors)."""
    out: list[Any] = []
    if _limits(config) is not None:
        out.append(limits.limits_middleware)
    return out


def setup(app: web.Application, config: AppConfig) -> None:
    keyring = _keyring(config)
    if keyring is not None:
        app[KEYRING] = keyring
    app[cors.CORS] = cors.CorsPolicy.build(
        config.cors_origins, has_key=keyring is not None, bind=config.host
    )
    app.on_response_prepare.append(cors.cors_headers)
    rate_limits = _limits(config)
    if rate_limits is not None:
        app[limits.LIMITS] = rate_limits
        app.on_response_prepare.append(limits.rate_headers)
        close = getattr(rate_limits.limiter, "close", None)
        if close is not None:  # a shared backend's client (Redis)
            app.on_cleanup.append(lambda _: close())


async def admit_model(request: web.Request, model: str) -> None:
    """Once the body names the public model: may this key use it, and the model's limits."""
    keyring = request.app.get(KEYRING)
    if keyring is not None and keyring.allowed:
        keyring.check_model(request.get(KEY_NAME), model)
    if limits.LIMITS in request.app:
        await limits.admit_model(request, model)


async def finished(request: web.Request, transcript: Transcript, chat: ChatRequest) -> None:
    """An answer is done: its tokens (the upstream's count, else an estimate) count
    against the tokens-per-minute limits."""
    ticket = request.get(limits.TICKET)
    if ticket is not None and ticket.token_keys:
        prompt, completion, _ = transcript.token_counts(chat)
        await ticket.charge_tokens(prompt + completion)
