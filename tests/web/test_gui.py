"""The chat page over HTTP: switches, the index, headers, caching and packaging.
What the page does in a browser is tested in test_gui_browser.py."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from g4f_server import __version__
from g4f_server.config import AppConfig
from g4f_server.gui.assets import STATIC, bundle
from tests.fake_providers import Scripted
from tests.server_process import offline_env, server_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_overrides() -> Any:
    yield
    AppConfig._overrides.clear()


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/gui/[^"]+)"', page)


async def test_without_the_gui_root_is_a_small_index(make_client: Any) -> None:
    client = await make_client(Scripted())
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    text = await resp.text()
    assert f"g4f-server {__version__}" in text
    assert "href='/docs'" in text and "href='/v1/models'" in text
    assert "--gui" in text and "G4F_GUI" in text
    assert "<script" not in text
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]

    resp = await client.get("/chat/")
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert error["code"] == "gui_disabled" and "--gui" in error["message"]
    page_asset = next(iter(bundle().files))
    resp = await client.get(f"/gui/{bundle().version}/{page_asset}")
    assert resp.status == 404


@pytest.mark.parametrize("path", ["/", "/chat/"])
async def test_the_page_with_its_csp_and_no_inline_script(make_client: Any, path: str) -> None:
    client = await make_client(Scripted(), gui=True)
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-cache"
    page = await resp.text()
    assert "{{" not in page
    assert 'data-demo="0"' in page and 'data-key-required="0"' in page
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S)
    assert scripts and all(body.strip() == "" for body in scripts)  # every script is a file
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    assert not re.search(r"<[^>]+\son[a-z]+=", page)  # no inline event handlers
    assert not re.search(r"<[^>]+\sstyle=", page)  # no inline styles
    assert "http://" not in page and "https://" not in page  # nothing from another host


async def test_assets_are_cached_forever_under_their_version(make_client: Any) -> None:
    client = await make_client(Scripted(), gui=True)
    page = await (await client.get("/")).text()
    urls = asset_urls(page)
    version = bundle().version
    assert urls and all(u.startswith(f"/gui/{version}/") for u in urls)
    for url in urls:
        resp = await client.get(url)
        assert resp.status == 200, url
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        again = await client.get(url, headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304
    script = await client.get(f"/gui/{version}/js/app.js")
    assert script.content_type == "text/javascript"
    # An old page asking for an old version gets the file, but not to keep.
    old = await client.get("/gui/000000000000/js/app.js")
    assert old.status == 200 and old.headers["Cache-Control"] == "no-cache"
    for missing in ("js/nope.js", "../assets.py", "vendor/VERSIONS", "index.html"):
        resp = await client.get(f"/gui/{version}/{missing}")
        assert resp.status == 404, missing


async def test_assets_are_sent_compressed_when_the_browser_accepts_it(make_client: Any) -> None:
    client = await make_client(Scripted(), gui=True)
    url = f"/gui/{bundle().version}/vendor/marked.esm.js"
    resp = await client.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    packed = await resp.read()
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed) == (STATIC / "vendor" / "marked.esm.js").read_bytes()
    assert len(packed) < len(gzip.decompress(packed)) / 2
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert resp.headers["Vary"] == "Accept-Encoding"


async def test_chat_without_slash_redirects(make_client: Any) -> None:
    client = await make_client(Scripted(), gui=True)
    resp = await client.get("/chat", allow_redirects=False)
    assert resp.status == 308 and resp.headers["Location"] == "/chat/"


async def test_the_page_opens_without_the_key_the_api_does_not(make_client: Any) -> None:
    client = await make_client(Scripted(), gui=True, api_key="k")
    page = await client.get("/")
    assert page.status == 200
    assert 'data-key-required="1"' in await page.text()
    for url in asset_urls(await page.text()):
        assert (await client.get(url)).status == 200
    assert (await client.get("/v1/models")).status == 401
    assert (await client.get("/v1/models", headers={"Authorization": "Bearer k"})).status == 200


def test_switches_from_code_environment_and_defaults() -> None:
    assert AppConfig.load({}).gui is False
    assert AppConfig.load({"G4F_GUI": "true"}).gui is True
    assert AppConfig(gui=True).gui is True
    # The contract's programmatic example.
    AppConfig.set_config(
        g4f_api_key="k", provider="Copilot", model="gpt-4o-mini", gui=True, timeout=300
    )
    config = AppConfig.load({})
    assert config.gui is True and config.api_key == "k" and config.timeout == 300
    assert AppConfig.load({"G4F_GUI": "0"}).gui is True  # code beats the environment
    assert config.redacted()["gui"] is True  # the start-up config line


def test_help_lists_both_switches() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "g4f_server", "api", "--help"],
        capture_output=True, text=True, check=True, env={"COLUMNS": "200", "PATH": "/usr/bin"},
    ).stdout  # fmt: skip
    assert "--gui" in out and "G4F_GUI" in out


def test_gui_flag_on_the_real_process_without_pydantic(tmp_path: Path) -> None:
    """``g4f-server api --gui`` serves the page; serving it loads no request schemas."""
    env = offline_env(str(tmp_path))
    with server_process("--gui", env=env) as (proc, base):
        page = urllib.request.urlopen(base + "/").read().decode()
        assert 'id="prompt"' in page
        for url in asset_urls(page):
            urllib.request.urlopen(base + url).read()
        json.load(urllib.request.urlopen(base + "/v1/models"))
        assert "_pydantic_core" not in Path(f"/proc/{proc.pid}/maps").read_text()


def test_the_wheel_ships_the_page(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("g4f_server-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "g4f_server/gui/" + p.relative_to(STATIC.parent).as_posix()
        for folder in (STATIC, STATIC.parent / "apidocs")  # the chat page, /docs
        for p in folder.rglob("*")
        if p.is_file()
    }
    assert shipped <= names, sorted(shipped - names)
    for licence in ("LICENSE.marked.txt", "LICENSE.dompurify.txt", "LICENSE-MPL.dompurify.txt"):
        assert f"g4f_server/gui/static/vendor/{licence}" in names


def test_vendored_files_match_their_recorded_versions() -> None:
    import hashlib

    lines = (STATIC / "vendor" / "VERSIONS").read_text().splitlines()
    for line in lines[1:]:
        package, version, name, digest = line.split()
        body = (STATIC / "vendor" / name).read_bytes()
        assert hashlib.sha256(body).hexdigest() == digest, name
        assert f"{version}" in body.decode()[:400], (package, version)
    # /docs's viewer (scripts/refresh-docs-vendor.sh); its file names no version.
    docs = STATIC.parent / "apidocs" / "vendor"
    for line in (docs / "VERSIONS").read_text().splitlines()[1:]:
        package, version, name, digest = line.split()
        assert hashlib.sha256((docs / name).read_bytes()).hexdigest() == digest, name
