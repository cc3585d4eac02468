"""Programmatic entry points (seed API): ``run_api``, ``AppConfig``, ``create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import tempfile
from pathlib import Path
from typing import Any

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from g4f_server.logs import configure_logging, get_logger

__all__ = ["AppConfig", "create_app", "run_api", "serve"]

log = get_logger("g4f_server")


def run_api(
    host: str | None = None,
    port: int | None = None,
    debug: bool | None = None,
    **settings: Any,
) -> None:
    """Start the server; arguments override ``AppConfig.set_config`` and G4F_* env vars."""
    serve(AppConfig.load(host=host, port=port, debug=debug, **settings))


def _event_loop() -> Any:
    try:
        import uvloop  # optional: pip install g4f-server[speed]
    except ImportError:
        return None
    return uvloop.new_event_loop()


async def _schedule_gc_freeze(app: Any) -> None:
    # After the listening socket opens (run_app has no hook for that moment, hence the
    # delay), so the one full collection does not delay the first answer.
    asyncio.get_running_loop().call_later(1.0, _freeze_gc)


# The collector's youngest generation is collected after this many more container
# objects were made than freed (CPython's default: 700). At 32 connections the requests
# in flight hold more than 700 live ones, so the default collected every 13-25
# requests, found nothing (a request's objects die by reference count), and promoted
# the requests in flight into older generations, whose full collections then took ~8 ms
# each. With 10,000, collections become rare (0-0.1 per 1,000 requests); cyclic garbage
# (rare here) waits at most this many allocations longer.
# bench/ab.py --variants "now=;default=gc-700" measures it (docs/performance.md).
YOUNG_GENERATION_THRESHOLD = 10_000


def _freeze_gc() -> None:
    """Collect start-up garbage once, then move the survivors (modules, schemas) out of
    the collector's sight, so full collections under load stop re-scanning tens of
    thousands of them; raise the young generation's threshold above the requests in
    flight; and turn the collector back on (``cli.main`` turns it off)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
    gc.enable()


def _announce(config: AppConfig, runner: Any) -> None:
    """The line an operator waits for: where the server listens (the port actually bound),
    its docs page, and each provider's status (a fallback model list is "degraded")."""
    from g4f_server.providers.registry import REGISTRY

    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{runner.addresses[0][1]}"
    extra = {"chat": f"{url}/"} if config.gui else {}
    log.info(
        "listening", url=url, docs=f"{url}/docs", providers=runner.app[REGISTRY].summary(), **extra
    )


def _serve_one(
    config: AppConfig,
    reuse_port: bool = False,
    announce: bool = True,
    metrics_dir: str | None = None,
) -> None:
    from g4f_server.web import admission

    configure_logging(debug=config.debug, json_logs=config.json_logs)
    app = create_app(config)
    if metrics_dir is not None:  # a worker of several: /metrics sums them all
        from g4f_server.controls import metrics_shared

        metrics_shared.share(app, Path(metrics_dir))
    app.on_startup.append(_schedule_gc_freeze)
    # As web.run_app, with the connection cap in the runner (admission.py).
    admission.serve(
        app,
        config,
        reuse_port=reuse_port,
        loop=_event_loop(),
        on_listening=functools.partial(_announce, config) if announce else None,
    )


def _check_plugins(config: AppConfig) -> None:
    """Load the plugins once before serving: a provider that refuses the settings (an
    upstream turned on without its key) stops the server with its message, once, not
    once per worker and not as a traceback."""
    from g4f_server.config import ConfigError
    from g4f_server.providers.loader import load_plugins, make_plugin_manager

    try:
        load_plugins(
            make_plugin_manager(),
            allow=config.load_plugins,
            deny=config.disabled_plugins,
            settings=config.plugin_settings(),
        )
    except ConfigError as exc:
        log.error("bad_config", error=str(exc))
        raise SystemExit(2) from None


def serve(config: AppConfig) -> None:
    configure_logging(debug=config.debug, json_logs=config.json_logs)
    log.info("starting", url=f"http://{config.host}:{config.port}", config=config.redacted())
    _check_plugins(config)
    if config.state_url:  # every worker would fail the same way: say it once, exit 1
        from g4f_server.storage.redis.state import preflight

        problem = preflight(config)
        if problem:
            log.error("state_unreachable", error=problem)
            raise SystemExit(1)
    if config.workers == 1:
        try:
            _serve_one(config)
        except OSError as exc:  # port in use, address not available, no permission
            log.error("cannot_listen", host=config.host, port=config.port, error=str(exc))
            raise SystemExit(1) from None
        return
    # Several processes share the port (SO_REUSEPORT); the kernel balances connections.
    import multiprocessing  # only here: ~2 ms of every start-up otherwise

    from g4f_server.web.supervisor import Supervisor

    ctx = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        on_death = metrics_dir = None
        if config.metrics:  # the workers' numbers meet here (controls/metrics_shared.py)
            from g4f_server.controls.metrics_shared import retire

            metrics_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="g4f-metrics-"))
            on_death = functools.partial(retire, Path(metrics_dir))

        def spawn(index: int) -> Any:
            # The first worker announces: N identical start-up lines would say nothing more.
            args = (config, True, index == 0, metrics_dir)
            return ctx.Process(target=_serve_one, args=args, daemon=True)

        status = Supervisor(spawn, config.workers, config.worker_restarts, on_death).run()
    if status:
        raise SystemExit(status)
