"""AppConfig: every setting of the server, with one precedence rule.

flag (or ``AppConfig.set_config``) > environment (``G4F_<FIELD>``) > default.

A plain frozen dataclass, not a pydantic model: the config is built at start-up, and the
first pydantic model class costs ~5 MB and ~0.1 s, which the idle server does not need
(pydantic loads with the first request that has a body to validate).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# Fields whose values are never printed or logged.
SECRET_FIELDS = frozenset({"api_key", "state_password"})
# Environment names that differ from G4F_<FIELD> (the seed's names).
_ENV_ALIASES = {"api_key": ("G4F_API_KEY",)}
# Table settings that a flag or variable may also give as names ("groq,gemini"): each
# name turns on a table of defaults, merged with the config file's tables of that name.
_NAMED_TABLES = frozenset({"upstreams"})
_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n"})


class ConfigError(ValueError):
    """A setting has a value of the wrong type or out of range; the message names it."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "g4f-server"


def _bounded(
    default: float, *, ge: float | None = None, gt: float | None = None, le: float | None = None
) -> Any:
    """A numeric field with bounds (``ge`` at least, ``gt`` above, ``le`` at most),
    checked when the config is built."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le})


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    host: str = "127.0.0.1"
    port: int = _bounded(1337, ge=1, le=65535)
    workers: int = _bounded(1, ge=1, le=64)
    # quick deaths in a row of one worker before --workers gives up (web/supervisor.py)
    worker_restarts: int = _bounded(5, ge=0, le=1000)
    debug: bool = False
    json_logs: bool = False
    access_log: bool = True
    gui: bool = False  # the chat page at / and /chat/
    demo: bool = False  # public demo: the chat page on, risky features off (demo.py)
    demo_rpm: int = _bounded(20, ge=1)  # per client, unless [limits] sets per_client

    api_key: str | None = None
    provider: str | None = None  # default provider when a request names none
    model: str | None = None  # default model when a request names none
    image_provider: str | None = None
    image_model: str | None = None
    ignored_providers: list[str] = field(default_factory=list)
    priority: list[str] = field(default_factory=list)  # providers tried first, in order
    load_plugins: list[str] | None = None  # allow-list of plugin names; None = all
    disabled_plugins: list[str] = field(default_factory=list)

    proxy: str | None = None  # outgoing proxy for every upstream call
    # The request body's "proxy" field lets any client make the server connect through
    # a host of its choosing (SSRF); off unless the operator trusts every client.
    allow_request_proxy: bool = False
    timeout: float = _bounded(300.0, gt=0)  # whole upstream call
    stream_timeout: float = _bounded(120.0, gt=0)  # gap between streamed chunks
    startup_timeout: float = _bounded(5.0, gt=0)  # per provider, listing models
    models_ttl: float = _bounded(3600.0, gt=0)
    # Active health checks (providers/probes.py): each provider once per this many
    # seconds. 0 (the default) turns them off: a probe spends a free provider's quota.
    probe_interval: float = _bounded(0.0, ge=0)
    max_body_size: int = _bounded(32 * 1024 * 1024, ge=1024)
    # Request limits (web/body.py, admission.py): no single request, and no crowd of
    # them, may stall the event loop or exhaust memory or file descriptors.
    body_timeout: float = _bounded(60.0, gt=0)  # seconds to receive a whole body (408)
    max_json_depth: int = _bounded(64, ge=2, le=200)  # le: history stays storable (orjson)
    max_json_items: int = _bounded(200_000, ge=100)  # values in one JSON body
    max_messages: int = _bounded(2048, ge=1)  # messages in one chat request
    max_content_parts: int = _bounded(2048, ge=1)  # content parts, all messages together
    max_embedding_inputs: int = _bounded(2048, ge=1)  # texts in one embeddings request
    max_multipart_parts: int = _bounded(100, ge=1)  # parts of one multipart body
    max_connections: int = _bounded(1000, ge=1)  # open client connections
    max_connections_per_address: int = _bounded(0, ge=0)  # of them; 0: a quarter
    header_timeout: float = _bounded(10.0, gt=0)  # seconds to send a request head
    keepalive_timeout: float = _bounded(15.0, gt=0)  # idle seconds after an answer
    max_in_flight: int = _bounded(256, ge=1)  # requests being handled (503 above)
    in_flight_body_budget: int = _bounded(128 * 1024**2, ge=1024)  # their bodies' bytes

    data_dir: Path = field(default_factory=default_data_dir)
    public_url: str | None = None  # e.g. https://ai.example.com, for /media URLs
    # Storage bounds (storage/): the media folder, uploads and the conversation store.
    media_max_age: float = _bounded(7 * 86400.0, gt=0)  # seconds a media file is kept
    media_max_bytes: int = _bounded(1024**3, ge=1024)  # whole media folder
    media_max_file_size: int = _bounded(50 * 1024**2, ge=1024)  # one image/audio file
    max_upload_size: int = _bounded(32 * 1024**2, ge=1024)  # multipart uploads
    # Uploaded cookies are one file (or Redis field) per domain: a HAR can name thousands.
    cookie_max_upload_domains: int = _bounded(100, ge=1)  # domains in one upload
    cookie_max_domains: int = _bounded(500, ge=1)  # domains stored in all
    conversation_ttl: float = _bounded(7 * 86400.0, gt=0)  # idle seconds before expiry
    conversation_max: int = _bounded(10_000, ge=1)  # stored conversation rows
    # Stored Responses objects in bytes (a count alone let 10,000 records of a 32 MiB body
    # each grow the store to hundreds of GB): one record (413 above it), and all of them
    # (the least recently saved go first).
    response_max_bytes: int = _bounded(16 * 1024**2, ge=1024)
    response_store_max_bytes: int = _bounded(512 * 1024**2, ge=1024)
    # Shared state (storage/redis_state.py): unset keeps everything in data_dir.
    state_url: str | None = None  # redis://host:6379/0 or rediss:// (TLS)
    state_password: str | None = None  # instead of a password in the URL
    state_prefix: str = "g4f:"  # every key the server writes starts with it
    # Rate limits while the state store is away: admit uncounted (False) or answer 503.
    limits_fail_closed: bool = False
    # Seconds one rate-limit call may wait for the state store before it counts as away:
    # a hung Redis (not a dead one) otherwise holds every limited request for the
    # client's socket timeout and its retry (10 s and more).
    limits_timeout: float = _bounded(0.25, gt=0, le=30)
    # Tokens a chat answer without max_tokens is expected to cost: reserved against the
    # tokens-per-minute limits at admission, settled with the real count after the answer.
    limits_completion_estimate: int = _bounded(1024, ge=1)

    # The operator's controls (docs/configuration.md). The tables come from the config
    # file (``--config`` / G4F_CONFIG, TOML) or from code.
    config: Path | None = None
    models: dict[str, Any] = field(default_factory=dict)  # [models]: public name -> targets
    keys: dict[str, Any] = field(default_factory=dict)  # [keys.NAME]: sha256, models, limits
    limits: dict[str, Any] = field(default_factory=dict)  # [limits]: per_key/client/models
    trusted_proxies: list[str] = field(default_factory=list)  # may set X-Forwarded-For
    cors_origins: list[str] | None = None  # None: the safe default (cors.py)
    metrics: bool = False  # GET /metrics (metrics.py)
    emulate: list[str] = field(default_factory=list)  # "tools", "json" (emulation.py)
    cache_ttl: float = _bounded(0.0, ge=0)  # response cache (cache.py); 0 = off
    cache_max_bytes: int = _bounded(64 * 1024**2, ge=1024)  # the cache's memory bound
    metrics_public: bool = False  # /metrics without the key (for a scraper on a private net)
    # OpenAI-compatible upstreams to turn on (the openai_compat plugin reads them through
    # the ``providers`` hook): ``--upstreams groq,gemini`` / G4F_UPSTREAMS names presets,
    # ``[upstreams.NAME]`` tables in the config file configure them or add others. Never
    # on by a key that merely exists in the environment: a paid upstream is opt-in.
    upstreams: dict[str, Any] = field(default_factory=dict)

    _overrides: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        hints = _hints()
        for spec in dataclasses.fields(self):
            value = _coerce(spec.name, hints[spec.name], getattr(self, spec.name))
            _check_bounds(spec.name, value, spec.metadata)
            object.__setattr__(self, spec.name, value)  # frozen: set once, here
        if self.demo:  # the chat page for the public: never a proxy of a visitor's choosing
            object.__setattr__(self, "gui", True)
            object.__setattr__(self, "allow_request_proxy", False)
            if not self.limits.get("per_client"):  # counted by the kernel's limits.py
                limits = {**self.limits, "per_client": {"rpm": self.demo_rpm}}
                object.__setattr__(self, "limits", limits)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(spec.name for spec in dataclasses.fields(cls))

    @classmethod
    def set_config(cls, **values: Any) -> None:
        """Programmatic configuration (seed API); ``None`` values are ignored."""
        cls._overrides.update({k: v for k, v in values.items() if v is not None})
        if "g4f_api_key" in cls._overrides:
            cls._overrides["api_key"] = cls._overrides.pop("g4f_api_key")

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, **flags: Any) -> AppConfig:
        """Build the effective config: flags > set_config > environment > config file >
        defaults."""
        environ = dict(os.environ if environ is None else environ)
        path = flags.get("config") or cls._overrides.get("config") or environ.get("G4F_CONFIG")
        values: dict[str, Any] = read_config_file(Path(path)) if path else {}
        from_file = dict(values)
        for name in cls.field_names():
            for key in _ENV_ALIASES.get(name, (f"G4F_{name.upper()}",)):
                if key in environ:
                    values[name] = environ[key]
        values.update(cls._overrides)
        values.update({k: v for k, v in flags.items() if v is not None})
        for name in _NAMED_TABLES:  # names from a flag or variable add to the file's tables
            tables = from_file.get(name)
            if isinstance(tables, Mapping) and values.get(name) is not tables:
                named = _coerce(name, _hints()[name], values[name])
                values[name] = {**tables, **{n: t or tables.get(n, {}) for n, t in named.items()}}
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**values)

    def plugin_settings(self) -> Mapping[str, Any]:
        """What the ``providers`` hook receives: every setting but the gateway's own
        secrets, read-only."""
        from types import MappingProxyType

        return MappingProxyType(
            {n: getattr(self, n) for n in self.field_names() if n not in SECRET_FIELDS}
        )

    def redacted(self) -> dict[str, Any]:
        """The config as shown in logs: JSON values, secrets replaced."""
        shown: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            shown[name] = str(value) if isinstance(value, Path) else value
        for name in SECRET_FIELDS:
            if shown.get(name):
                shown[name] = "***"
        shown["upstreams"] = {
            n: {k: "***" if k == "api_key" and v else v for k, v in t.items()}
            if isinstance(t, Mapping)
            else t
            for n, t in self.upstreams.items()
        }
        if self.state_url:
            shown["state_url"] = redact_url(self.state_url)
        return shown


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@functools.cache
def _hints() -> dict[str, Any]:
    # The annotations are strings (``from __future__ import annotations``): resolve once.
    return typing.get_type_hints(AppConfig)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """``value`` (from a flag, the environment or code) as the field's type."""
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        if value is None:
            return None
        hint = next(arg for arg in args if arg is not type(None))
    if typing.get_origin(hint) is list:
        if isinstance(value, str):
            return _split(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return list(value)
        raise _error(name, value, "a list of names (or one comma-separated string)")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _error(name, value, "true or false")
    if hint is int or hint is float:
        number = _number(hint, value)
        if number is None:
            raise _error(name, value, "an integer" if hint is int else "a number")
        return number
    if typing.get_origin(hint) is dict:
        if isinstance(value, str):  # from the environment: a JSON object
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if name in _NAMED_TABLES and isinstance(value, str):  # "groq,gemini"
            value = _split(value)
        if name in _NAMED_TABLES and isinstance(value, list | tuple):
            if not all(isinstance(v, str) for v in value):
                raise _error(name, value, "a list of names or a table per name")
            value = {v: {} for v in value}
        if isinstance(value, Mapping):
            return dict(value)
        raise _error(name, value, "a table (in the config file) or a JSON object")
    if hint is Path:
        if isinstance(value, str | os.PathLike) and str(value):
            return Path(value)
        raise _error(name, value, "a path")
    if hint is str:
        if isinstance(value, str):
            return value
        raise _error(name, value, "a string")
    raise TypeError(f"AppConfig.{name}: unsupported type {hint!r}")  # a bug of ours


def _number(kind: type[int] | type[float], value: Any) -> int | float | None:
    """``value`` as an int or a finite float, parsing strings; None if it is not one."""
    if isinstance(value, str):
        try:
            value = kind(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind is int:
        return value if isinstance(value, int) else None
    return float(value) if math.isfinite(value) else None


def _check_bounds(name: str, value: Any, bounds: Any) -> None:
    ge, gt, le = bounds.get("ge"), bounds.get("gt"), bounds.get("le")
    if ge is not None and value < ge:
        raise _error(name, value, f"at least {ge}")
    if gt is not None and value <= gt:
        raise _error(name, value, f"greater than {gt}")
    if le is not None and value > le:
        raise _error(name, value, f"at most {le}")


def env_var(name: str) -> str:
    """The environment variable of setting ``name`` (what ``load`` reads, what the CLI's
    help and the errors name)."""
    if name not in AppConfig.field_names():
        raise KeyError(f"no setting {name!r}")  # a typo in a caller of ours
    return _ENV_ALIASES.get(name, (f"G4F_{name.upper()}",))[0]


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """The ``G4F_*`` variables that name no setting (a typo ``load`` would ignore), each
    with the closest setting's variable, or None when none is close."""
    known = {env_var(name) for name in AppConfig.field_names()}
    unknown = sorted(k for k in (os.environ if environ is None else environ) if k[:4] == "G4F_")
    unknown = [k for k in unknown if k not in known]
    if not unknown:
        return []
    import difflib  # only for a typo: ~1 ms

    def closest(variable: str) -> str | None:  # compared without the G4F_ every name has
        found = difflib.get_close_matches(variable[4:], [k[4:] for k in known], n=1)
        return f"G4F_{found[0]}" if found else None

    return [(k, closest(k)) for k in unknown]


def _error(name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{name} ({env_var(name)}) must be {expected}, got {value!r}")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML config file: top-level keys are AppConfig fields (as the
    flags, without dashes), ``[models]``, ``[keys.NAME]`` and ``[limits]`` its tables."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    unknown = sorted(set(data) - set(AppConfig.field_names()))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s): {', '.join(unknown)}")
    return {"config": path, **data}
