"""structlog set-up: readable console lines by default, JSON lines with --json-logs.

Every line logged while a request is handled carries its request id (bound through
contextvars by the middleware). Message contents, keys and cookies are never logged.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, debug: bool = False, json_logs: bool = False) -> None:
    level = logging.DEBUG if debug else logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json_logs else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # stderr: stdout stays clean for command output such as `providers --json`.
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # aiohttp's own access logger is replaced by ours (one line with provider and model).
    logging.basicConfig(level=logging.WARNING if not debug else logging.DEBUG)


def get_logger(name: str = "g4f_server") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
