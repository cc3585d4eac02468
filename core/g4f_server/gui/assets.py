"""The chat page's files (and /docs's), read once and kept in memory (about 150 KB;
/docs's 0.9 MB on its first request), with a version.

Asset URLs carry the version, a hash of every file: a new release changes the URLs, so
browsers may cache an asset forever and still never run a stale one.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).with_name("static")
APIDOCS = Path(__file__).with_name("apidocs")  # the /docs page
PAGE = "index.html"
STATUS_PAGE = "status.html"  # /status: providers, recent errors, request rates
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compressing does not pay
    content_type: str
    etag: str


def _asset(body: bytes, content_type: str) -> Asset:
    packed = gzip.compress(body, 9, mtime=0)
    digest = hashlib.sha256(body).hexdigest()[:20]
    worth_it = len(packed) < len(body) * 0.9
    return Asset(body, packed if worth_it else None, content_type, f'"{digest}"')


@dataclass(frozen=True, slots=True)
class Bundle:
    version: str
    files: dict[str, Asset]  # by path relative to static/, "/"-separated
    template: str  # index.html with its {{placeholders}}


def _read(folder: Path) -> Bundle:
    files: dict[str, Asset] = {}
    version = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in _TYPES:
            continue
        name = path.relative_to(folder).as_posix()
        body = path.read_bytes()
        version.update(name.encode() + b"\0" + body)
        if name not in (PAGE, STATUS_PAGE):
            files[name] = _asset(body, _TYPES[path.suffix])
    template = (folder / PAGE).read_text(encoding="utf-8")
    return Bundle(version.hexdigest()[:12], files, template)


@functools.cache
def bundle() -> Bundle:
    """The chat page's files."""
    return _read(STATIC)


@functools.cache
def docs_bundle() -> Bundle:
    """The API reference's files (/docs: the vendored OpenAPI viewer, ~0.9 MB, read by
    the first /docs request, not at start-up)."""
    return _read(APIDOCS)


@functools.cache
def docs_page() -> Asset:
    """apidocs/index.html with its asset URLs."""
    b = docs_bundle()
    return _asset(b.template.replace("{{assets}}", f"/docs/{b.version}/").encode(), _TYPES[".html"])


@functools.cache
def page(*, demo: bool, key_required: bool) -> Asset:
    """index.html for this server: asset URLs and the two switches the page shows."""
    b = bundle()
    text = (
        b.template.replace("{{assets}}", f"/gui/{b.version}/")
        .replace("{{demo}}", "1" if demo else "0")
        .replace("{{key_required}}", "1" if key_required else "0")
    )
    return _asset(text.encode(), _TYPES[".html"])


@functools.cache
def status_page() -> Asset:
    """status.html with its asset URLs; its data comes from /v1/status (behind the key)."""
    text = (STATIC / STATUS_PAGE).read_text(encoding="utf-8")
    return _asset(text.replace("{{assets}}", f"/gui/{bundle().version}/").encode(), _TYPES[".html"])


def index_page(version: str) -> bytes:
    """GET / without the GUI: what this server is and where to go."""
    v = html.escape(version)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>g4f-server {v}</title></head><body>"
        f"<h1>g4f-server {v}</h1>"
        "<p>An OpenAI-compatible API. Point an OpenAI client at <code>/v1</code>.</p>"
        "<ul><li><a href='/docs'>/docs</a>: the API reference, to try every route</li>"
        "<li><a href='/v1/models'>/v1/models</a>: the models served here</li>"
        "<li><a href='/health'>/health</a></li></ul>"
        "<p>The chat page is off. Start the server with <code>--gui</code> "
        "(or <code>G4F_GUI=true</code>) to use it here.</p>"
        "</body></html>"
    ).encode()
