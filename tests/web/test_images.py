"""Image generation through the whole gateway: both response formats, stored media URLs
(also behind a proxy), downloads from an upstream, failover, and the openai SDK."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from g4f_server import errors
from tests.media_providers import Painter, png


@pytest.fixture
def gateway(start_gateway: Any, tmp_path: Any) -> Any:
    async def start(*plugins: object, **config: Any) -> str:
        return await start_gateway(plugins=list(plugins), data_dir=str(tmp_path), **config)

    return start


@pytest.fixture
async def upstream(aiohttp_server: Any) -> str:
    """An image host: serves a PNG only with the provider's fetch header."""

    async def image(request: web.Request) -> web.Response:
        if request.headers.get("X-Key") != "k1":
            return web.Response(status=403)
        return web.Response(body=png(3, 3), content_type="image/png")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>nope</html>", content_type="text/html")

    async def lying(request: web.Request) -> web.Response:
        return web.Response(body=b"not an image at all", content_type="image/png")

    app = web.Application()
    app.router.add_get("/img/ok.png", image)
    app.router.add_get("/img/page", html)
    app.router.add_get("/img/lie.png", lying)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def post(url: str, body: dict[str, Any], **kw: Any) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body, **kw) as resp:
        return resp.status, await resp.json(), resp.headers


async def fetch(url: str, **kw: Any) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as resp:
        return resp.status, await resp.read(), resp.headers


async def test_b64_json_inlines_the_png(gateway: Any) -> None:
    base = await gateway(Painter())
    status, body, headers = await post(
        base + "/v1/images/generations",
        {"prompt": "a red square", "n": 2, "response_format": "b64_json"},
    )
    assert status == 200, body
    assert len(body["data"]) == 2
    assert base64.b64decode(body["data"][0]["b64_json"]) == png(8, 8)
    assert "url" not in body["data"][0]
    assert body["data"][0]["revised_prompt"] == "a red square!"
    assert body["provider"] == "Painter" and body["model"] == "painter-img"
    assert headers["X-G4F-Provider"] == "Painter"


async def test_url_is_absolute_and_downloads(gateway: Any) -> None:
    base = await gateway(Painter())
    status, body, _ = await post(base + "/v1/images/generations", {"prompt": "red"})
    assert status == 200, body
    url = body["data"][0]["url"]
    assert url.startswith(base + "/media/") and url.endswith(".png")
    status, data, headers = await fetch(url)
    assert status == 200
    assert data == png(8, 8)
    assert headers["Content-Type"] == "image/png"
    assert "immutable" in headers["Cache-Control"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    etag = headers["ETag"]
    status, data, _ = await fetch(url, headers={"If-None-Match": etag})
    assert status == 304 and data == b""


async def test_url_behind_a_proxy_uses_forwarded_headers(gateway: Any) -> None:
    base = await gateway(Painter())
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "ai.example.com, internal:8080",
        "X-Forwarded-Prefix": "/g4f",
    }
    _, body, _ = await post(base + "/v1/images/generations", {"prompt": "x"}, headers=forwarded)
    url = body["data"][0]["url"]
    assert url.startswith("https://ai.example.com/g4f/media/")
    # What nginx would do: strip the prefix and pass the rest to us.
    status, data, _ = await fetch(base + url.split("/g4f", 1)[1])
    assert status == 200 and data == png(8, 8)
    # A forged header cannot inject anything into the URL.
    _, body, _ = await post(
        base + "/v1/images/generations",
        {"prompt": "x"},
        headers={"X-Forwarded-Host": 'evil.com/"><script>', "X-Forwarded-Proto": "javascript"},
    )
    assert body["data"][0]["url"].startswith(base + "/media/")


async def test_configured_public_url_wins(gateway: Any) -> None:
    base = await gateway(Painter(), public_url="https://img.example.org/")
    _, body, _ = await post(
        base + "/v1/images/generations", {"prompt": "x"}, headers={"X-Forwarded-Host": "other"}
    )
    assert body["data"][0]["url"].startswith("https://img.example.org/media/")


async def test_provider_url_is_downloaded_with_its_headers(gateway: Any, upstream: str) -> None:
    base = await gateway(Painter(name="Linker", mode="url", upstream=upstream))
    status, body, _ = await post(
        base + "/api/Linker/images/generations", {"prompt": "x", "response_format": "b64_json"}
    )
    assert status == 200, body
    assert base64.b64decode(body["data"][0]["b64_json"]) == png(3, 3)
    status, body, _ = await post(base + "/api/Linker/images/generations", {"prompt": "x"})
    url = body["data"][0]["url"]
    assert url.startswith(base + "/media/") and upstream not in url
    assert (await fetch(url))[1] == png(3, 3)


@pytest.mark.parametrize("path", ["/img/page", "/img/lie.png", "/img/missing"])
async def test_non_image_download_fails_over(gateway: Any, upstream: str, path: str) -> None:
    bad = Painter(name="Linker", mode="url", upstream=upstream, path=path, priority=1)
    base = await gateway(bad)
    status, body, _ = await post(base + "/v1/images/generations", {"prompt": "x"})
    assert status == 502 and body["error"]["type"] == "provider_error"
    base = await gateway(bad, Painter(priority=2))
    status, body, headers = await post(base + "/v1/images/generations", {"prompt": "x"})
    assert status == 200 and body["provider"] == "Painter"
    assert headers["X-G4F-Attempts"] == "2"


async def test_provider_errors_and_validation(gateway: Any) -> None:
    base = await gateway(Painter(fail=errors.ProviderRateLimitError("slow down", retry_after=7)))
    status, body, headers = await post(base + "/v1/images/generations", {"prompt": "x"})
    assert status == 429 and headers["Retry-After"] == "7"
    status, body, _ = await post(base + "/v1/images/generations", {"prompt": "x", "n": 5})
    assert status == 400 and body["error"]["param"] == "n"
    status, body, _ = await post(base + "/v1/images/generations", {"prompt": "x", "size": "big"})
    assert status == 400 and body["error"]["param"] == "size"
    status, body, _ = await post(base + "/api/Nobody/images/generations", {"prompt": "x"})
    assert status == 404 and body["error"]["code"] == "provider_not_found"


async def test_model_alias_and_request_reach_the_provider(gateway: Any) -> None:
    painter = Painter()
    base = await gateway(painter)
    status, _, _ = await post(
        base + "/v1/images/generations",
        {"prompt": "x", "model": "dall-e-3", "size": "512x256", "seed": 4, "nologo": True},
    )
    assert status == 200
    seen = painter.seen[-1]
    assert seen.model == "painter-img" and seen.dimensions == (512, 256) and seen.seed == 4
    assert seen.model_extra == {"nologo": True}


async def test_openai_sdk_images_generate(gateway: Any) -> None:
    base = await gateway(Painter(), api_key="sk-test")
    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
    result = await client.images.generate(
        prompt="a sunset", model="dall-e-3", size="1024x1024", response_format="url"
    )
    url = result.data[0].url
    assert url and url.startswith(base + "/media/")
    status, data, _ = await fetch(url, headers={"Authorization": "Bearer sk-test"})
    assert status == 200 and data == png(8, 8)
    result = await client.images.generate(prompt="a sunset", response_format="b64_json", n=2)
    assert [base64.b64decode(d.b64_json or "") for d in result.data] == [png(8, 8)] * 2
    await client.close()
