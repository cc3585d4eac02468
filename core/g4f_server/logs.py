"""structlog set-up: readable key=value lines by default, JSON lines with --json-logs.

Every line logged while a request is handled carries its request id (bound through
contextvars by the middleware). Message contents, keys and cookies are never logged.
"""

from __future__ import annotations

import logging
import sys

import orjson


def _import_structlog_without_rich() -> None:
    """structlog imports rich (when installed, as typer installs it) for pretty
    tracebacks we never use: ~0.2 s of start-up and ~6 MB. Hide it during that import."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()
import structlog  # noqa: E402


def configure_logging(*, debug: bool = False, json_logs: bool = False) -> None:
    # The access line is written for every request, so rendering must be cheap: plain
    # key=value (or orjson) lines, and tracebacks by the stdlib formatter (a rich
    # traceback renders every local of every frame and can stall the loop for ~0.5 s).
    level = logging.DEBUG if debug else logging.INFO
    if json_logs:
        renderer: structlog.typing.Processor = structlog.processors.JSONRenderer(
            serializer=lambda obj, **_: orjson.dumps(obj, default=str).decode()
        )
    else:
        renderer = _console_renderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # stderr: stdout stays clean for command output such as `providers --json`.
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # aiohttp's own access logger is replaced by ours (one line with provider and model).
    logging.basicConfig(level=logging.WARNING if not debug else logging.DEBUG)


def _console_renderer() -> structlog.typing.Processor:
    """key=value lines; a traceback, if any, follows on its own lines."""
    key_value = structlog.processors.KeyValueRenderer(
        key_order=["timestamp", "level", "event"], drop_missing=True
    )

    def render(logger: object, name: str, event: structlog.typing.EventDict) -> str:
        exception = event.pop("exception", None)
        line = key_value(logger, name, event)
        return f"{line}\n{exception}" if exception else line

    return render


def get_logger(name: str = "g4f_server") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
