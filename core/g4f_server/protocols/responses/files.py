"""``input_file`` content parts as text for the provider.

Chat providers take text and images, not files. A text-like file (plain text, Markdown,
JSON, CSV, source code) is its text; a PDF is the text ``pypdf`` extracts when the
``g4f-server[pdf]`` extra is installed, else a 400 naming the extra. Anything else (and a
``file_id`` or ``file_url``: the gateway has no file store and fetches nothing on a
client's behalf) is a 400 naming what was sent.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import PurePosixPath
from typing import Any

from g4f_server import errors

PDF_EXTRA = "g4f-server[pdf]"
# Text-like by MIME type (besides text/*) or by file name suffix.
_TEXT_MIMES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/x-sh",
        "application/sql",
        "application/x-python",
    }
)
_SUFFIXES = (
    "txt md markdown rst json jsonl csv tsv xml yaml yml toml ini cfg log html htm css js mjs "
    "ts tsx jsx py rb go rs java kt c h cc cpp hpp cs php sh bash zsh sql swift scala lua pl r "
    "tex diff patch env proto graphql"
)
_TEXT_SUFFIXES = frozenset("." + suffix for suffix in _SUFFIXES.split())


def file_text(part: dict[str, Any], param: str) -> str:
    """The text a provider gets for an ``input_file`` part: a header naming the file, then
    its content."""
    name = part.get("filename") if isinstance(part.get("filename"), str) else None
    data = part.get("file_data")
    if not isinstance(data, str) or not data:
        what = "file_id" if part.get("file_id") else "file_url" if part.get("file_url") else None
        detail = (
            f"'{what}' is not supported (the gateway keeps no files and fetches no URLs)"
            if what
            else "it needs 'file_data'"
        )
        raise errors.InvalidRequestError(
            f"{param}: an input_file part: {detail}; send the file inline as 'file_data' "
            "(a data URI or base64) with its 'filename'",
            param=param,
            code="unsupported_input_file",
        )
    mime, raw = _decode(data, param)
    suffix = PurePosixPath(name).suffix.lower() if name else ""
    if mime == "application/pdf" or suffix == ".pdf" or raw.startswith(b"%PDF-"):
        text = _pdf_text(raw, param)
    elif mime.startswith("text/") or mime in _TEXT_MIMES or suffix in _TEXT_SUFFIXES:
        text = _utf8(raw, param)
    elif not mime and not suffix:
        text = _utf8(raw, param)  # no name, no type: text if it decodes as text
    else:
        raise errors.InvalidRequestError(
            f"{param}: files of type {mime or suffix!r} are not supported (supported: "
            "text-like files such as plain text, Markdown, JSON, CSV and code; PDF)",
            param=param,
            code="unsupported_input_file",
        )
    return f"[file: {name or 'unnamed'}]\n{text}"


def _decode(data: str, param: str) -> tuple[str, bytes]:
    """``(mime, bytes)`` of a data URI or of bare base64 (mime "")."""
    mime = ""
    if data.startswith("data:"):
        header, sep, data = data[5:].partition(",")
        if not sep or ";base64" not in header:
            raise errors.InvalidRequestError(
                f"{param}: 'file_data' must be a base64 data URI", param=param
            )
        mime = header.split(";", 1)[0].strip().lower()
    try:
        return mime, base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidRequestError(
            f"{param}: 'file_data' is not valid base64", param=param
        ) from None


def _utf8(raw: bytes, param: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.InvalidRequestError(
            f"{param}: the file is not UTF-8 text", param=param, code="unsupported_input_file"
        ) from None


def _pdf_text(raw: bytes, param: str) -> str:
    try:
        import pypdf
    except ImportError:
        raise errors.InvalidRequestError(
            f"{param}: PDF files need the {PDF_EXTRA} extra on the server "
            f"(pip install '{PDF_EXTRA}')",
            param=param,
            code="pdf_extra_missing",
        ) from None
    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many kinds on a broken file
        raise errors.InvalidRequestError(
            f"{param}: the PDF could not be read ({type(exc).__name__})",
            param=param,
            code="invalid_input_file",
        ) from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise errors.InvalidRequestError(
            f"{param}: the PDF has no text to extract (scanned pages are not read)",
            param=param,
            code="invalid_input_file",
        )
    return text
