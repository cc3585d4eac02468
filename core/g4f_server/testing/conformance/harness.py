"""The conformance harness: one provider plugin in an in-process gateway on 127.0.0.1,
its emulator (when it has one) started and pointed at, and every log line kept for the
secrets check."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import structlog
from aiohttp import web

if TYPE_CHECKING:
    from g4f_server.providers.registry import ProviderEntry
    from g4f_server.testing.upstream import Upstream

Status = Literal["PASS", "FAIL", "SKIP"]
# Against an emulator the kernel's own upstream timeout is short, so that the timeout
# check (an upstream that never answers) takes seconds; a real upstream gets the default.
EMULATOR_TIMEOUT = 2.0


@dataclass(slots=True, frozen=True)
class Result:
    status: Status
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.status} {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass
class Target:
    """What to check: a plugin (a module or an object with hook implementations), its
    emulator, and the gateway settings it needs (e.g. ``upstreams=["groq"]``)."""

    plugin: Any
    upstream: Upstream | None = None
    config: dict[str, Any] = field(default_factory=dict)
    module: str | None = None  # the import name for the import check (default: the plugin's)
    faults: bool = True  # run the fault checks (when the emulator supports them)
    import_budget: float = 0.5  # seconds the plugin's own import may take

    @property
    def module_name(self) -> str | None:
        if self.module:
            return self.module
        name = getattr(self.plugin, "__name__", None)
        return name if isinstance(name, str) and "." not in name[:1] else None


# structlog's loggers alias every level to ``msg`` when the class is made, and a logger
# used once is cached with the file it was given: patching the classes' methods is the
# one place that sees every line, whichever logger wrote it and whenever it was made
# (WriteLogger: the gateway's configuration; PrintLogger: structlog's default, as in a
# test run that never configured logging).
_LOGGER_CLASSES = (structlog.WriteLogger, structlog.PrintLogger)
_WRITE_METHODS = (
    "msg", "log", "debug", "info", "warn", "warning", "err", "error",
    "critical", "exception", "fatal", "failure",
)  # fmt: skip


class Harness:
    """``async with Harness(target) as h``: ``h.url`` is the gateway, ``h.entries`` the
    providers the plugin registered, ``h.logs()`` what was logged meanwhile."""

    def __init__(self, target: Target, *, lines: list[str] | None = None) -> None:
        """``lines``: where the log lines go (a list shared by several harnesses, so that
        a last secrets check reads what every earlier one logged)."""
        self.target = target
        self.upstream = target.upstream
        self.url = ""
        self.entries: list[ProviderEntry] = []
        self.app: web.Application | None = None
        self.http: aiohttp.ClientSession | None = None
        self._lines: list[str] = [] if lines is None else lines
        self._saved_env: dict[str, str | None] = {}
        self._saved_methods: dict[tuple[type, str], Any] = {}
        self._handler: logging.Handler = logging.NullHandler()
        self._runner: web.AppRunner | None = None
        self._started_upstream = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    async def __aenter__(self) -> Harness:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        from g4f_server.app import create_app
        from g4f_server.config import AppConfig
        from g4f_server.providers.registry import REGISTRY

        self._capture_logs()
        if self.upstream is not None:
            if not self.upstream.url:
                await self.upstream.start()
                self._started_upstream = True
            self.set_env(self.upstream.env(self.upstream.url))
        self._tmp = tempfile.TemporaryDirectory(prefix="g4f-conformance-")
        fields: dict[str, Any] = {"data_dir": self._tmp.name}
        if self.upstream is not None:
            fields["timeout"] = EMULATOR_TIMEOUT
        fields.update(self.target.config)
        self.app = create_app(
            AppConfig(**fields), plugins=[self.target.plugin], load_entrypoints=False
        )
        # As `g4f-server api` serves: a client that hangs up cancels its handler.
        self._runner = web.AppRunner(self.app, handler_cancellation=True)
        await self._runner.setup()  # lists every provider's models (on_startup)
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.entries = list(self.app[REGISTRY].ordered)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._started_upstream and self.upstream is not None:
            await self.upstream.stop()
            self.upstream.url = ""
        if self._tmp is not None:
            self._tmp.cleanup()
        self._restore_env()
        self._release_logs()

    # --- environment -------------------------------------------------------------------

    def set_env(self, values: dict[str, str]) -> None:
        """Set environment variables until the harness ends (then they are restored)."""
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    # --- logs --------------------------------------------------------------------------

    def _capture_logs(self) -> None:
        lines = self._lines
        # The stdlib's records too (aiohttp's access and client logs carry URLs).
        self._handler = _Collect(lines)
        logging.getLogger().addHandler(self._handler)
        for cls in _LOGGER_CLASSES:
            for name in _WRITE_METHODS:
                original = cls.__dict__.get(name)
                if original is None:
                    continue
                self._saved_methods[(cls, name)] = original

                def tee(logger: Any, message: str, _original: Any = original) -> None:
                    lines.append(str(message))
                    _original(logger, message)

                setattr(cls, name, tee)

    def _release_logs(self) -> None:
        logging.getLogger().removeHandler(self._handler)
        for (cls, name), original in self._saved_methods.items():
            setattr(cls, name, original)
        self._saved_methods.clear()

    def logs(self) -> str:
        return "\n".join(self._lines)

    def secrets(self) -> list[str]:
        """The values that must never be logged: the emulator's, and every environment
        variable that names a key, a token, a secret or a cookie."""
        found = list(self.upstream.secrets) if self.upstream is not None else []
        for name, value in os.environ.items():
            upper = name.upper()
            secret = any(w in upper for w in ("KEY", "TOKEN", "SECRET", "COOKIE", "PASSWORD"))
            if secret and len(value) >= 8:
                found.append(value)
        return found

    # --- the providers -----------------------------------------------------------------

    def context(self, entry: ProviderEntry) -> Any:
        """A ProviderContext for calling ``entry``'s hooks directly, as the kernel does."""
        from g4f_server.providers.context import make_context

        assert self.app is not None
        return make_context(self.app, entry)


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:
            self.lines.append(str(record.msg))
