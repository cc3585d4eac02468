"""structlog set-up: readable key=value lines by default, JSON lines with --json-logs.

Every line logged while a request is handled carries its request id (bound through
contextvars by the middleware). Message contents, keys and cookies are never logged.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TextIO

import orjson


def _import_structlog_without_rich() -> None:
    """structlog imports rich (when installed, and typer requires it) for pretty
    tracebacks we never use: ``import structlog`` runs ``structlog.dev``, whose module body
    imports rich, whatever renderer is configured later (ours is plain: ``format_exc_info``,
    no ``ConsoleRenderer``). That is +3.4 MB idle and ~0.02 s of every start-up (2026-12,
    rich 15, structlog 26.1). Hide rich during that one import; later imports find it."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()
import structlog  # noqa: E402

_request_id: ContextVar[str | None] = ContextVar("g4f_request_id", default=None)
# What configure_logging installed, for the access line's direct path (see access_line).
_pipeline: list[structlog.typing.Processor] | None = None
_renderer: structlog.typing.Processor | None = None
_sink: structlog.WriteLogger | None = None
# The stream the access line is written to directly (None: sys.stderr as it is now).
_stream: TextIO | None = None


# Every line logged while this request is handled carries its id. aiohttp runs each
# request in a task of its own, so the binding ends with the request. The ContextVar's
# own method, not a wrapper: one Python frame fewer per request.
bind_request_id: Callable[[str | None], Token[str | None]] = _request_id.set


class _Stderr:
    """sys.stderr as it is at each write, not as it was when logging was set up: a server
    built inside a test (pytest swaps sys.stderr per test) or a gunicorn worker (which
    may redirect it after import) writes where stderr is now. One attribute look-up a line."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging_once(*, debug: bool = False, json_logs: bool = False) -> bool:
    """Set logging up from the config unless something already did: our runner (``api``,
    ``run_api``) does before building the app, but gunicorn and other hosts import
    ``create_app`` directly, and without this their workers would ignore
    ``G4F_JSON_LOGS`` and ``G4F_DEBUG``. A set-up made first (ours, or an embedding
    program's own structlog configuration) is kept. True when it configured."""
    if _pipeline is not None or structlog.is_configured():
        return False
    configure_logging(debug=debug, json_logs=json_logs)
    return True


def configure_logging(
    *, debug: bool = False, json_logs: bool = False, stream: TextIO | None = None
) -> None:
    # The access line is written for every request, so each step is cheap: our own
    # timestamper and key=value renderer (structlog's generic ones cost ~25 us a line, a
    # tenth of a whole proxied request), WriteLogger instead of print(), and tracebacks by
    # the stdlib formatter (a rich traceback renders every local of every frame and can
    # stall the loop for ~0.5 s).
    global _pipeline, _renderer, _sink, _stream
    level = logging.DEBUG if debug else logging.INFO
    renderer: structlog.typing.Processor = _render_json if json_logs else _render_key_value
    pipeline = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        _add_level_and_time,
        _format_exception,
        renderer,
    ]
    # stderr: stdout stays clean for command output such as `providers --json`.
    _stream = stream
    stream = stream or _Stderr()  # type: ignore[assignment]
    structlog.configure(
        processors=pipeline,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    _pipeline, _renderer, _sink = pipeline, renderer, structlog.WriteLogger(stream)
    # aiohttp's own access logger is replaced by ours (one line with provider and model).
    logging.basicConfig(level=logging.WARNING if not debug else logging.DEBUG)


_second = -1
_second_text = ""
# ".000Z" to ".999Z": a table, as a format spec (``:03d``) costs ~3k instructions a line.
_MILLIS = tuple(f".{n:03d}Z" for n in range(1000))


def _utc_now() -> str:
    """ISO 8601 UTC with milliseconds; the date part is formatted once per second."""
    global _second, _second_text
    now = time.time()
    second = int(now)
    if second != _second:
        _second, _second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return _second_text + _MILLIS[int((now - second) * 1000)]


def _add_request_id(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    if (request_id := _request_id.get()) is not None:
        event.setdefault("request_id", request_id)
    return event


def _add_level_and_time(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    event["level"] = "warning" if method == "warn" else method
    event["timestamp"] = _utc_now()
    return event


_format_exc_info = structlog.processors.format_exc_info


def _format_exception(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # Only lines that carry an exception pay for the formatting step.
    if "exc_info" in event:
        return _format_exc_info(logger, method, event)
    return event


_FIRST = ("timestamp", "level", "event")


def _render_key_value(logger: object, method: str, event: structlog.typing.EventDict) -> str:
    """``timestamp='...' level='info' event='request' key=value ...``; a ``config``
    mapping (the start-up line's settings) follows one setting a line, a traceback, if
    any, on its own lines."""
    exception = event.pop("exception", None)
    config = event.pop("config") if isinstance(event.get("config"), dict) else None
    parts = [f"{key}={event.pop(key)!r}" for key in _FIRST if key in event]
    parts += [f"{key}={value!r}" for key, value in event.items()]
    line = " ".join(parts)
    if config is not None:
        line += "".join(f"\n    {key} = {value!r}" for key, value in config.items())
    return f"{line}\n{exception}" if exception else line


def _render_json(logger: object, method: str, event: structlog.typing.EventDict) -> str:
    return orjson.dumps(event, default=str).decode()


def get_logger(name: str = "g4f_server") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)


_access = get_logger("g4f_server.access")

# The access line's fields before and after ``ms``, as rendered, by their values: a
# server answers a handful of (method, path, status, provider, model, attempts, key)
# combinations over and over, and rendering them (a repr each) was ~6k instructions of
# every line. Bounded: a client chooses the path.
_fields: dict[tuple[object, ...], tuple[str, str]] = {}
_FIELDS_KEPT = 1024
# A hundredth's digits as ``repr`` of a float writes them ("1.5", not "1.50"; "2.0").
_CENTS = tuple(f"{n:02d}".rstrip("0") or "0" for n in range(100))


def _ms_text(hundredths: int) -> str:
    """``repr(hundredths / 100)`` without a float's repr (~2.4k instructions): a float of
    two decimals prints as them, below 1e13 (a timing is far below)."""
    if 0 <= hundredths < 10**15:
        whole, cents = divmod(hundredths, 100)
        return f"{whole}.{_CENTS[cents]}"
    return repr(hundredths / 100)


def access_line(
    request_id: str,
    method: str,
    path: str,
    status: int,
    provider: str | None,
    model: str | None,
    attempts: int | None,
    ms: float,
    key: str | None = None,
) -> None:
    """The one line logged per request (no content, keys or cookies; ``key`` is the
    *name* of the API key the request carried, never its value). ``ms`` is logged to
    the hundredth.

    With the set-up of ``configure_logging`` in place, the line is rendered and written
    here, the same text the pipeline would give at a fraction of its cost (it is written
    for every request); context variables a plugin binds through structlog are not merged
    into it. With any other set-up (an embedding application's, or a test's
    ``structlog.testing.capture_logs``, which swaps the processors) it goes through
    structlog like every other line."""
    hundredths = round(ms * 100)  # round(ms, 2) formats its digits, at twice the cost
    pipeline = _pipeline
    ours = pipeline is not None and pipeline[-1] is _renderer and _sink is not None
    if ours and _renderer is _render_key_value:  # the default: cached fields, one f-string
        values = (method, path, status, provider, model, attempts, key)
        fields = _fields.get(values)
        if fields is None:
            if len(_fields) >= _FIELDS_KEPT:
                _fields.clear()
            fields = _fields[values] = (
                f" method={method!r} path={path!r} status={status!r} provider={provider!r}"
                f" model={model!r} attempts={attempts!r} ms=",
                f"{f' key={key!r}' if key else ''} request_id=",
            )
        # Written straight to the stream, as WriteLogger.msg does but without its lock
        # and our _Stderr's two frames: a single write() of a whole line does not
        # interleave with another thread's. A line-buffered stream (stderr) flushes it.
        out = _stream or sys.stderr
        out.write(
            f"timestamp='{_utc_now()}' level='info' event='request'{fields[0]}"
            f"{_ms_text(hundredths)}{fields[1]}{request_id!r}\n"
        )
        if not getattr(out, "line_buffering", False):
            out.flush()
        return
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "provider": provider,
        "model": model,
        "attempts": attempts,
        "ms": hundredths / 100,
    }
    if key:
        fields["key"] = key
    if not ours:
        _access.info("request", **fields, request_id=request_id)
        return
    # In the pipeline's order: the call's fields, the event, then the processors' keys.
    event = {**fields, "event": "request", "request_id": request_id}
    event |= {"level": "info", "timestamp": _utc_now()}
    _sink.msg(_render_json(None, "info", event))  # type: ignore[union-attr]
