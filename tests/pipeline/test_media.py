"""GET /media: only server-generated names, no traversal, retention; chat media publishing."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from g4f_server import events, hookimpl
from g4f_server.provider import ModelInfo, ProviderContext, ProviderInfo
from g4f_server.requests import ChatRequest
from g4f_server.storage.media import MediaStore
from tests.media_providers import Illustrator, Painter, png


async def get(url: str | URL, **kw: Any) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as resp:
        return resp.status, await resp.read()


async def make_image(base: str) -> str:
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + "/v1/images/generations", json={"prompt": "x"}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return (await resp.json())["data"][0]["url"]


@pytest.mark.parametrize(
    "raw_path",
    [
        "/media/..%2Fconversations.sqlite3",
        "/media/%2E%2E%2Fconversations.sqlite3",
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/%2Fetc%2Fpasswd",
        "/media/..%5Cconversations.sqlite3",
        "/media/../conversations.sqlite3",
        "/media/..",
        "/media/",
        "/media",
        "/media/secret.png",
        "/media/1700000000-0123456789abcdef0123456789abcdef.png",  # well-formed, absent
        "/media/1700000000-0123456789abcdef0123456789abcdef.png%00.txt",
    ],
)
async def test_traversal_and_unknown_names_are_404(
    start_gateway: Any, tmp_path: Path, raw_path: str
) -> None:
    base = await start_gateway(plugins=[Painter()], data_dir=str(tmp_path))
    # Targets worth stealing exist: a file in the data dir and a foreign file in media/.
    (tmp_path / "media").mkdir(exist_ok=True)
    (tmp_path / "media" / "secret.png").write_bytes(png())
    (tmp_path / "conversations.sqlite3").touch()
    status, body = await get(URL(base + raw_path, encoded=True))
    assert status == 404, raw_path
    assert b"SQLite" not in body and png() not in body


async def test_absolute_path_and_symlink_are_not_served(start_gateway: Any, tmp_path: Path) -> None:
    base = await start_gateway(plugins=[Painter()], data_dir=str(tmp_path))
    url = await make_image(base)
    name = url.rsplit("/", 1)[1]
    # Replace the generated file by a symlink to a file outside: a name match is not enough.
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"outside")
    link = tmp_path / "media" / name.replace(name.split("-")[1][:4], "ffff", 1)
    link.symlink_to(outside)
    assert (await get(base + "/media/" + link.name))[0] == 404
    assert (await get(URL(base + "/media/" + str(outside).replace("/", "%2F"), encoded=True)))[
        0
    ] == 404
    assert (await get(url))[0] == 200


async def test_head_and_range(start_gateway: Any, tmp_path: Path) -> None:
    base = await start_gateway(plugins=[Painter()], data_dir=str(tmp_path))
    url = await make_image(base)
    async with aiohttp.ClientSession() as s:
        async with s.head(url) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
        async with s.get(url, headers={"Range": "bytes=0-7"}) as resp:
            assert resp.status == 206 and await resp.read() == b"\x89PNG\r\n\x1a\n"


async def test_retention_by_total_size_through_the_server(
    start_gateway: Any, tmp_path: Path
) -> None:
    big = png(20, 20, noise=True)  # ~1.2 KB, incompressible
    base = await start_gateway(
        plugins=[Painter(noise=True, side=20)],
        data_dir=str(tmp_path),
        media_max_bytes=len(big) * 2 + 500,
    )
    urls = []
    for _ in range(4):
        urls.append(await make_image(base))
        time.sleep(0.01)  # distinct mtimes: "oldest" is well defined
    statuses = [(await get(u))[0] for u in urls]
    assert statuses[-2:] == [200, 200]
    assert 404 in statuses[:2]
    total = sum(p.stat().st_size for p in (tmp_path / "media").iterdir())
    assert total <= len(big) * 2 + 500


async def test_retention_by_age_and_leftovers(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, max_age=3600, max_bytes=10**6, max_file_size=10**5)
    old = await store.save(png())
    new = await store.save(png(4, 4))
    past = time.time() - 7200
    os.utime(tmp_path / old.name, (past, past))
    stale_tmp = tmp_path / ".tmp-crashed.part"
    stale_tmp.write_bytes(b"half")
    os.utime(stale_tmp, (past, past))
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not ours")
    os.utime(foreign, (past, past))
    assert await store.prune_async() == 2
    assert store.path(old.name) is None and not stale_tmp.exists()
    assert store.path(new.name) is not None
    assert foreign.exists()  # never delete what the store did not create


async def test_store_limits_and_types(tmp_path: Path) -> None:
    from g4f_server import errors

    store = MediaStore(tmp_path, max_age=3600, max_bytes=10**6, max_file_size=2000)
    with pytest.raises(errors.ProviderError):
        await store.save(b"x" * 2001)
    with pytest.raises(errors.ProviderError):
        await store.save(b"")
    # Unknown bytes never get a browser-renderable type, whatever the provider claims.
    html = await store.save(b"<script>alert(1)</script>", "text/html")
    assert html.name.endswith(".bin") and html.mime_type == "application/octet-stream"
    mp3 = await store.save(b"ID3\x03\x00rest", None)
    assert mp3.name.endswith(".mp3") and mp3.mime_type == "audio/mpeg"
    assert not list(tmp_path.glob(".tmp-*"))


async def test_chat_media_is_published_as_absolute_url(start_gateway: Any, tmp_path: Path) -> None:
    base = await start_gateway(plugins=[Illustrator()], data_dir=str(tmp_path))
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            base + "/v1/chat/completions",
            json={"model": "draw-chat", "messages": [{"role": "user", "content": "draw"}]},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gw.example"},
        ) as resp,
    ):
        content = (await resp.json())["choices"][0]["message"]["content"]
    assert "![red square](https://gw.example/media/" in content
    path = content.split("https://gw.example", 1)[1].split(")", 1)[0]
    status, data = await get(base + path)
    assert status == 200 and data == png()


async def test_media_is_open_but_everything_else_needs_the_key(
    start_gateway: Any, tmp_path: Path
) -> None:
    base = await start_gateway(plugins=[Painter()], data_dir=str(tmp_path), api_key="k3y")
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            base + "/v1/images/generations",
            json={"prompt": "x"},
            headers={"Authorization": "Bearer k3y"},
        ) as resp,
    ):
        assert resp.status == 200
        url = (await resp.json())["data"][0]["url"]
    status, data = await get(url)  # no key: a browser <img> loading a chat answer's image
    assert status == 200 and data.startswith(b"\x89PNG")
    assert (await get(base + "/v1/images/generations"))[0] == 401
    assert (await get(base + "/mediaX/whatever"))[0] == 401


class _BrokenPicture:
    """Text, then media the store refuses (no bytes), in one batch."""

    name = "BrokenPicture"

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, public_names=True)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        return [ModelInfo("broken-picture", frozenset({"chat"}))]

    @hookimpl
    async def chat(self, request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[Any]:
        yield [
            events.TextDelta("first words, "),
            events.TextDelta("second words"),
            events.Media("image", data=b"", mime_type="image/png"),
        ]


async def test_text_before_media_that_fails_reaches_the_client(
    start_gateway: Any, tmp_path: Path
) -> None:
    """The stream's write loop holds a read's text deltas to encode them together: they
    are written before the media is published, so a failed publish costs no text."""
    base = await start_gateway(plugins=[_BrokenPicture()], data_dir=str(tmp_path))
    body = {
        "model": "broken-picture",
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + "/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    assert '"content":"first words, "' in text and '"content":"second words"' in text
    assert text.index("second words") < text.index('"error"')
