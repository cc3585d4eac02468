"""Requests for images and audio, as clients send them and providers receive them."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from g4f_server.schemas.fields import IMAGE_OPTIONS, ApiKey, typed_extras

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


class _Open(BaseModel):
    # Validators are built on first use, not at import: start-up stays fast.
    model_config = ConfigDict(extra="allow", defer_build=True)


class ImageRequest(_Open):
    """POST /v1/images/generations. Provider-specific options (nologo, seed, ...) arrive
    as extra fields and are available in ``model_extra``."""

    prompt: str = Field(min_length=1, max_length=32000)
    model: str = ""
    n: int = Field(default=1, ge=1, le=4)
    size: str | None = None
    response_format: Literal["url", "b64_json"] = "url"
    seed: int | None = None
    negative_prompt: str | None = None
    provider: str | None = None
    api_key: ApiKey | None = None

    # Common provider options stay extra fields (providers read them from model_extra);
    # their types are checked here, so a wrong one is a 400, not a provider crash.
    _options = model_validator(mode="before")(
        classmethod(lambda cls, data: typed_extras(data, IMAGE_OPTIONS))
    )

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: str | None) -> str | None:
        if value is not None and value != "auto" and not _SIZE.match(value):
            raise ValueError("size must look like 1024x1024")
        return value

    @property
    def dimensions(self) -> tuple[int, int] | None:
        match = _SIZE.match(self.size or "")
        return (int(match[1]), int(match[2])) if match else None


class SpeechRequest(_Open):
    """POST /v1/audio/speech."""

    input: str = Field(min_length=1, max_length=4096)
    model: str = ""
    voice: str = "alloy"
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = None
    provider: str | None = None
    api_key: ApiKey | None = None


class TranscriptionForm(BaseModel):
    """multipart/form-data of POST /v1/audio/transcriptions (as /openapi.json shows it)."""

    file: bytes
    model: str = ""
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] = "json"
    provider: str | None = None


class TranscriptionRequest(_Open, TranscriptionForm):
    """The form as providers receive it: ``file`` holds the uploaded bytes."""

    filename: str = "audio.wav"
    content_type: str = "application/octet-stream"
    api_key: ApiKey | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


# --- multipart forms, as documented in /openapi.json (the routes read the parts) --------


class CookieUpload(BaseModel):
    """multipart/form-data of POST /v1/upload_cookies: one or more files (field ``files``),
    each a browser cookie export (JSON) or a HAR file."""

    files: list[bytes]
