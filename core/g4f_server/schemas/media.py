"""The media requests now live in ``g4f_server.requests`` (re-exported here for one
release); what stays is the cookie upload form, as /openapi.json documents it."""

from __future__ import annotations

from pydantic import BaseModel

from g4f_server.requests import (
    ImageRequest,
    SpeechRequest,
    TranscriptionForm,
    TranscriptionRequest,
)

__all__ = [
    "CookieUpload",
    "ImageRequest",
    "SpeechRequest",
    "TranscriptionForm",
    "TranscriptionRequest",
]


# --- multipart forms, as documented in /openapi.json (the routes read the parts) --------


class CookieUpload(BaseModel):
    """multipart/form-data of POST /v1/upload_cookies: one or more files (field ``files``),
    each a browser cookie export (JSON) or a HAR file."""

    files: list[bytes]
