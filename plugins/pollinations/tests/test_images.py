"""Images against the emulator: URL, query, seeds, hosts, error pictures."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

import g4f_server_pollinations as plugin
from g4f_server import errors
from g4f_server.provider import ImageRequest
from g4f_server_pollinations import images


async def test_anonymous_image_uses_legacy_host(emulator, ctx, emu_mod) -> None:
    items = await plugin.generate_images(
        ImageRequest(prompt="a red cat / on a mat?", model="flux", size="512x256", seed=42),
        ctx(),
    )
    assert len(items) == 1
    assert items[0].data == emu_mod.png() and items[0].mime_type == "image/png"
    assert items[0].revised_prompt == "a red cat / on a mat?"
    seen = emulator.last("image")
    assert seen.host == "legacy-image" and seen.bearer is None
    assert seen.path == "/prompt/a red cat / on a mat?"
    assert seen.raw_path == "/prompt/a%20red%20cat%20%2F%20on%20a%20mat%3F"
    assert seen.query == {
        "width": "512",
        "height": "256",
        "model": "flux",
        "nologo": "true",
        "private": "true",
        "enhance": "false",
        "safe": "false",
        "seed": "42",
    }


async def test_keyed_image_uses_gateway(emulator, ctx) -> None:
    await plugin.generate_images(ImageRequest(prompt="x"), ctx(api_key="sk_test_key"))
    seen = emulator.last("image")
    assert (seen.host, seen.path, seen.bearer) == ("gen", "/image/x", "sk_test_key")
    assert "model" not in seen.query  # none asked: the upstream picks its default
    assert (seen.query["width"], seen.query["height"]) == ("1024", "1024")


async def test_n_images_have_distinct_seeds(emulator, ctx, monkeypatch) -> None:
    monkeypatch.setenv("POLLINATIONS_ANON_IMAGE_CONCURRENCY", "4")
    items = await plugin.generate_images(ImageRequest(prompt="dog", n=3), ctx())
    assert len(items) == 3
    seeds = {r.query["seed"] for r in emulator.seen("image")}
    assert len(seeds) == 3
    emulator.requests.clear()
    await plugin.generate_images(ImageRequest(prompt="dog", n=2, seed=10), ctx())
    assert sorted(r.query["seed"] for r in emulator.seen("image")) == ["10", "11"]


async def test_upstream_options(emulator, ctx) -> None:
    request = ImageRequest(
        prompt="logo",
        model="kontext",
        nologo=False,
        private="no",
        enhance=True,
        safe=True,
        transparent=True,
        image=["https://example.com/a.png", "https://example.com/b.png"],
        aspect_ratio="16:9",
    )
    await plugin.generate_images(request, ctx())
    query = emulator.last("image").query
    assert query["nologo"] == "false" and query["private"] == "false"
    assert query["enhance"] == "true" and query["safe"] == "true"
    assert query["transparent"] == "true"
    assert query["image"] == "https://example.com/a.png,https://example.com/b.png"
    assert (query["width"], query["height"]) == ("1024", "576")
    assert "aspectRatio" not in query  # images take the size; only video takes the ratio


async def test_video_model(emulator, ctx, emu_mod) -> None:
    context = ctx(api_key="sk_test_key")
    await plugin.list_models(context)  # learn which models are video
    items = await plugin.generate_images(
        ImageRequest(prompt="waves", model="seedance", aspect_ratio="9:16"), context
    )
    assert items[0].mime_type == "video/mp4" and items[0].data == emu_mod.FAKE_MP4
    assert emulator.last("image").query["aspectRatio"] == "9:16"


async def test_data_uri_input_rejected(ctx) -> None:
    with pytest.raises(errors.InvalidRequestError, match="http"):
        await plugin.generate_images(
            ImageRequest(prompt="x", image="data:image/png;base64,AAAA"), ctx()
        )


def test_long_prompt_is_shortened() -> None:
    url = images.build_url("http://h/prompt/", "ü" * 5000, {"width": "1"})
    assert len(url) <= images.MAX_URL
    prompt = unquote(url.split("/prompt/")[1].split("?")[0])
    assert prompt and set(prompt) == {"ü"}  # cut on a character, never inside an escape


async def test_error_picture_is_an_error(emulator, ctx) -> None:
    emulator.fail("image", "error_image")
    with pytest.raises(errors.ProviderError, match="Content moderation"):
        await plugin.generate_images(ImageRequest(prompt="x"), ctx())


async def test_non_image_is_an_error(emulator, ctx) -> None:
    emulator.fail("image", "non_image", message="Internal hiccup")
    with pytest.raises(errors.ProviderError, match="instead of an image: Internal hiccup"):
        await plugin.generate_images(ImageRequest(prompt="x"), ctx())
    emulator.fail("image", "non_image", message="Get a key at https://enter.pollinations.ai")
    with pytest.raises(errors.ProviderAuthError):
        await plugin.generate_images(ImageRequest(prompt="x"), ctx())


@pytest.mark.parametrize("keyed", [False, True])
async def test_a_failed_image_is_retried_once(emulator, ctx, keyed: bool) -> None:
    emulator.fail("image", 500, times=1)
    context = ctx(api_key="sk_test_key") if keyed else ctx()
    items = await plugin.generate_images(ImageRequest(prompt="x", n=2), context)
    assert len(items) == 2 and len(emulator.seen("image")) == 3


async def test_fewer_images_than_asked_is_an_error(emulator, ctx) -> None:
    emulator.fail("image", 500, times=3)  # one of the two fails again on its retry
    with pytest.raises(errors.ProviderError, match="1 of 2 images") as info:
        await plugin.generate_images(ImageRequest(prompt="x", n=2), ctx(api_key="sk_test_key"))
    assert info.value.status == 502


async def test_no_retry_for_what_a_retry_cannot_mend(emulator, ctx) -> None:
    emulator.fail("image", 402, times=1)
    with pytest.raises(errors.ProviderPaymentError):
        await plugin.generate_images(ImageRequest(prompt="x"), ctx())
    assert len(emulator.seen("image")) == 1


async def test_anonymous_images_are_spaced_for_the_host_limit(emulator, ctx, monkeypatch) -> None:
    # The host allows one request per min_gap; the plugin waits a little longer (the
    # margin covers a first request that is slower to arrive than the next).
    emulator.min_gap["legacy-image"] = 0.2
    monkeypatch.setenv("POLLINATIONS_ANON_IMAGE_INTERVAL", "0.5")
    items = await plugin.generate_images(ImageRequest(prompt="x", n=3), ctx())
    assert len(items) == 3
    assert emulator.rate_limited == [] and len(emulator.seen("image")) == 3


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        (401, errors.ProviderAuthError),
        (402, errors.ProviderPaymentError),
        (429, errors.ProviderRateLimitError),
        (500, errors.ProviderError),
    ],
)
async def test_image_status_mapping(emulator, ctx, mode: Any, error: type) -> None:
    emulator.fail("image", mode, retry_after="3")
    with pytest.raises(error) as info:
        await plugin.generate_images(ImageRequest(prompt="x"), ctx())
    if mode == 429:
        assert info.value.retry_after == 3


async def test_image_stall_is_timeout(emulator, ctx) -> None:
    emulator.stall_seconds = 2
    emulator.fail("image", "stall")
    with pytest.raises(errors.ProviderTimeoutError):
        await plugin.generate_images(ImageRequest(prompt="x"), ctx(timeout=0.3))


async def test_negative_prompt_is_sent(emulator, ctx) -> None:
    await plugin.generate_images(ImageRequest(prompt="x", negative_prompt="blurry, text"), ctx())
    assert emulator.last("image").query["negative_prompt"] == "blurry, text"
    await plugin.generate_images(ImageRequest(prompt="x"), ctx())
    assert "negative_prompt" not in emulator.last("image").query


@pytest.mark.parametrize(
    ("fields", "ratio"),
    [({"aspect_ratio": "16:9"}, "16:9"), ({"size": "1024x1536"}, "2:3"), ({}, None)],
)
async def test_gptimage_takes_the_ratio_in_the_prompt(emulator, ctx, fields, ratio) -> None:
    items = await plugin.generate_images(
        ImageRequest(prompt="a logo", model="gptimage", **fields), ctx()
    )
    seen = emulator.last("image")
    assert "width" not in seen.query and "height" not in seen.query
    assert seen.path == "/prompt/a logo" + (f" aspect-ratio: {ratio}" if ratio else "")
    assert items[0].revised_prompt == "a logo"
