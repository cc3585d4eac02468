"""AppConfig: every setting of the server, with one precedence rule.

flag (or ``AppConfig.set_config``) > environment (``G4F_<FIELD>``) > default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Fields whose values are never printed or logged.
SECRET_FIELDS = frozenset({"api_key"})
# Environment names that differ from G4F_<FIELD> (the seed's names).
_ENV_ALIASES = {"api_key": ("G4F_API_KEY",)}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "g4f-server"


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1337, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    debug: bool = False
    json_logs: bool = False
    access_log: bool = True

    api_key: str | None = None
    provider: str | None = None  # default provider when a request names none
    model: str | None = None  # default model when a request names none
    image_provider: str | None = None
    image_model: str | None = None
    ignored_providers: list[str] = Field(default_factory=list)
    priority: list[str] = Field(default_factory=list)  # providers tried first, in order
    load_plugins: list[str] | None = None  # allow-list of plugin names; None = all
    disabled_plugins: list[str] = Field(default_factory=list)

    proxy: str | None = None  # outgoing proxy for every upstream call
    # The request body's "proxy" field lets any client make the server connect through
    # a host of its choosing (SSRF); off unless the operator trusts every client.
    allow_request_proxy: bool = False
    timeout: float = Field(default=300.0, gt=0)  # whole upstream call
    stream_timeout: float = Field(default=120.0, gt=0)  # gap between streamed chunks
    startup_timeout: float = Field(default=5.0, gt=0)  # per provider, listing models
    models_ttl: float = Field(default=3600.0, gt=0)
    max_body_size: int = Field(default=32 * 1024 * 1024, ge=1024)

    data_dir: Path = Field(default_factory=default_data_dir)
    public_url: str | None = None  # e.g. https://ai.example.com, for /media URLs
    # Storage bounds (storage/): the media folder, uploads and the conversation store.
    media_max_age: float = Field(default=7 * 86400.0, gt=0)  # seconds a media file is kept
    media_max_bytes: int = Field(default=1024**3, ge=1024)  # whole media folder
    media_max_file_size: int = Field(default=50 * 1024**2, ge=1024)  # one image/audio file
    max_upload_size: int = Field(default=32 * 1024**2, ge=1024)  # multipart uploads
    conversation_ttl: float = Field(default=7 * 86400.0, gt=0)  # idle seconds before expiry
    conversation_max: int = Field(default=10_000, ge=1)  # stored conversation rows

    _overrides: ClassVar[dict[str, Any]] = {}

    @field_validator("ignored_providers", "priority", "disabled_plugins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return _split(value) if isinstance(value, str) else value

    @field_validator("load_plugins", mode="before")
    @classmethod
    def _split_allow_list(cls, value: Any) -> Any:
        return _split(value) if isinstance(value, str) else value

    @classmethod
    def set_config(cls, **values: Any) -> None:
        """Programmatic configuration (seed API); ``None`` values are ignored."""
        cls._overrides.update({k: v for k, v in values.items() if v is not None})
        if "g4f_api_key" in cls._overrides:
            cls._overrides["api_key"] = cls._overrides.pop("g4f_api_key")

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, **flags: Any) -> AppConfig:
        """Build the effective config: flags > set_config > environment > defaults."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            for key in _ENV_ALIASES.get(name, (f"G4F_{name.upper()}",)):
                if key in environ:
                    values[name] = environ[key]
        values.update(cls._overrides)
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls(**values)

    def redacted(self) -> dict[str, Any]:
        """The config as shown in logs: secrets replaced."""
        shown = self.model_dump(mode="json")
        for name in SECRET_FIELDS:
            if shown.get(name):
                shown[name] = "***"
        return shown


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
