"""End to end: the official openai SDK -> a running g4f-server -> this plugin -> the
emulator. Everything stays on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

import g4f_server_pollinations


@pytest.fixture
async def client(
    emulator: Any, start_gateway: Any, tmp_path: Path
) -> AsyncIterator[openai.AsyncOpenAI]:
    base = await start_gateway(plugins=[g4f_server_pollinations], data_dir=str(tmp_path))
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


async def test_chat(client: openai.AsyncOpenAI, emulator: Any) -> None:
    reply = await client.chat.completions.create(
        model="openai", messages=[{"role": "user", "content": "hi gateway"}]
    )
    assert reply.choices[0].message.content == "Echo: hi gateway"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    assert emulator.last("chat").host == "legacy-text"


# A stream of no events or only [DONE] is already the plugin's own 502 (test_chat.py).
@pytest.mark.parametrize("streamed", [False, True])
async def test_an_answer_without_text_is_a_502_empty_answer(
    client: openai.AsyncOpenAI, emulator: Any, streamed: bool
) -> None:
    """A 200 with no text is no success, streamed or not."""
    emulator.fail("chat", "empty", times=1)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(
            model="openai", messages=[{"role": "user", "content": "hi"}], stream=streamed
        )
    assert info.value.status_code == 502
    assert info.value.code == "empty_answer"


async def test_default_model_and_alias(client: openai.AsyncOpenAI, emulator: Any) -> None:
    await client.chat.completions.create(model="", messages=[{"role": "user", "content": "a"}])
    assert emulator.last("chat").json["model"] == "openai"
    await client.chat.completions.create(
        model="gpt-4.1-nano", messages=[{"role": "user", "content": "a"}]
    )
    assert emulator.last("chat").json["model"] == "openai-fast"


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="openai",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Echo: stream me please"
    assert finish == "stop"
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await client.chat.completions.create(model="openai", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
    ]
    second = await client.chat.completions.create(model="openai", messages=messages, tools=tools)
    assert second.choices[0].message.content == "The tool said: Sunny"


async def test_json_object(client: openai.AsyncOpenAI, emulator: Any) -> None:
    reply = await client.chat.completions.create(
        model="openai",
        messages=[{"role": "user", "content": "give json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": 42}
    assert emulator.last("chat").json["response_format"] == {"type": "json_object"}


async def test_vision(client: openai.AsyncOpenAI, emu_mod: Any) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(emu_mod.png()).decode()
    reply = await client.chat.completions.create(
        model="openai",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is it"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "image_url", "image_url": {"url": data_uri}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "I see 2 image(s): url, data"


async def test_reasoning_is_not_content(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="deepseek-reasoning", messages=[{"role": "user", "content": "why"}]
    )
    assert reply.choices[0].message.content == "Echo: why"


async def test_key_from_client_goes_to_gateway(client: openai.AsyncOpenAI, emulator: Any) -> None:
    await client.chat.completions.create(
        model="openai",
        messages=[{"role": "user", "content": "keyed"}],
        extra_headers={"X-Provider-Key": "sk_test_key"},
    )
    seen = emulator.last("chat")
    assert (seen.host, seen.bearer) == ("gen", "sk_test_key")


async def test_models_list(client: openai.AsyncOpenAI) -> None:
    ids = {m.id async for m in client.models.list()}
    assert {"openai", "openai-fast", "flux", "whisper", "elevenlabs"} <= ids


@pytest.mark.parametrize(
    ("mode", "status"),
    [(401, 403), (402, 402), (429, 429), (500, 502), (504, 504), ("notice", 502)],
)
async def test_error_mapping(client: openai.AsyncOpenAI, emulator: Any, mode, status) -> None:
    emulator.fail("chat", mode, retry_after="7")
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(
            model="openai", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == status
    if status == 429:
        assert info.value.response.headers["retry-after"] == "7"


async def test_bad_request_maps_to_400(client: openai.AsyncOpenAI, emulator: Any) -> None:
    emulator.fail("chat", 400)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="openai", messages=[{"role": "user", "content": "x"}]
        )


async def test_stream_error_before_output(client: openai.AsyncOpenAI, emulator: Any) -> None:
    emulator.fail("chat", "notice")
    with pytest.raises(openai.APIStatusError) as info:
        stream = await client.chat.completions.create(
            model="openai", messages=[{"role": "user", "content": "x"}], stream=True
        )
        async for _ in stream:
            pass
    assert info.value.status_code == 502


@pytest.mark.parametrize(("streamed", "keyed"), [(False, False), (True, False), (True, True)])
async def test_a_stalled_upstream_is_the_kernels_504_in_time(
    emulator: Any, start_gateway: Any, tmp_path: Path, streamed: bool, keyed: bool
) -> None:
    """A chat call arms no socket timer of its own (transport.client_timeout, watched):
    an upstream that never sends its headers is cut by the kernel's first-event limit,
    G4F_TIMEOUT, as a 504, not after the upstream's own stall (10 s here), and the
    upstream request is closed with it."""
    import time

    from g4f_server.testing import wait_until

    base = await start_gateway(
        plugins=[g4f_server_pollinations], data_dir=str(tmp_path), timeout=0.5
    )
    emulator.stall_seconds = 10
    emulator.fail("chat", "stall")
    headers = {"X-Provider-Key": "sk_test_key"} if keyed else {}
    started = time.monotonic()
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(
                model="openai",
                messages=[{"role": "user", "content": "x"}],
                stream=streamed,
                extra_headers=headers,
            )
    assert info.value.status_code == 504
    assert time.monotonic() - started < 3
    assert emulator.last("chat").host == ("gen" if keyed else "legacy-text")
    await wait_until(lambda: emulator.open_requests == 0, what="the stalled call closed")


async def test_mid_stream_pause_is_judged_by_the_stream_timeout(
    emulator: Any, start_gateway: Any, tmp_path: Path
) -> None:
    """A gap between chunks longer than G4F_TIMEOUT but within G4F_STREAM_TIMEOUT is fine:
    mid-answer, only the kernel's idle limit applies (not the plugin's socket timer)."""
    base = await start_gateway(
        plugins=[g4f_server_pollinations],
        data_dir=str(tmp_path),
        timeout=0.4,
        stream_timeout=5,
    )
    emulator.stall_seconds = 1.0  # the pause after the first chunk
    emulator.fail("chat", "gated")
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="openai", messages=[{"role": "user", "content": "x"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert emulator.content_chunks_sent > 1 and len(text) > 5


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_images(client: openai.AsyncOpenAI, emu_mod: Any, emulator: Any, response_format):
    result = await client.images.generate(
        model="flux", prompt="a tiny cat", size="256x256", n=2, response_format=response_format
    )
    assert len(result.data) == 2
    for image in result.data:
        if response_format == "url":
            async with aiohttp.ClientSession() as http, http.get(image.url) as resp:
                assert resp.status == 200
                assert await resp.read() == emu_mod.png()
        else:
            assert base64.b64decode(image.b64_json) == emu_mod.png()
    queries = [r.query for r in emulator.seen("image")]
    assert {q["width"] for q in queries} == {"256"}
    assert len({q["seed"] for q in queries}) == 2


async def test_image_error_picture(client: openai.AsyncOpenAI, emulator: Any) -> None:
    emulator.fail("image", "error_image")
    with pytest.raises(openai.APIStatusError) as info:
        await client.images.generate(model="flux", prompt="x")
    assert info.value.status_code == 502


async def test_speech_to_file(client: openai.AsyncOpenAI, emu_mod: Any, tmp_path: Path) -> None:
    out = tmp_path / "speech.mp3"
    response = await client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there")
    out.write_bytes(response.content)
    assert out.read_bytes() == emu_mod.FAKE_MP3
    assert response.response.headers["content-type"].startswith("audio/mpeg")


async def test_transcription_of_wav(client: openai.AsyncOpenAI, emu_mod: Any) -> None:
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", emu_mod.wav_bytes(), "audio/wav")
    )
    assert result.text == "hello world"


async def test_images_with_client_key(client: openai.AsyncOpenAI, emulator: Any) -> None:
    await client.images.generate(
        model="flux", prompt="keyed", extra_headers={"X-Provider-Key": "sk_test_key"}
    )
    seen = emulator.last("image")
    assert (seen.host, seen.bearer) == ("gen", "sk_test_key")


async def test_speech_with_client_key(client: openai.AsyncOpenAI, emulator: Any) -> None:
    response = await client.audio.speech.create(
        model="tts-1",
        voice="rachel",
        input="Hi",
        response_format="wav",
        extra_headers={"X-Provider-Key": "sk_test_key"},
    )
    assert response.content.startswith(b"RIFF")
    seen = emulator.last("speech")
    assert seen.bearer == "sk_test_key" and seen.json["model"] == "elevenlabs"


async def test_speech_rate_limit(client: openai.AsyncOpenAI, emulator: Any) -> None:
    emulator.fail("legacy_get", 429, retry_after="5")
    with pytest.raises(openai.RateLimitError) as info:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi")
    assert info.value.response.headers["retry-after"] == "5"


async def test_video_model_through_the_images_route(
    emulator: Any, start_gateway: Any, tmp_path: Path, monkeypatch: Any, emu_mod: Any
) -> None:
    monkeypatch.setenv("POLLINATIONS_API_KEY", "sk_test_key")  # video models are listed keyed
    base = await start_gateway(plugins=[g4f_server_pollinations], data_dir=str(tmp_path))
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        result = await sdk.images.generate(model="veo", prompt="waves")
    assert result.data[0].url and "/media/" in result.data[0].url
    async with aiohttp.ClientSession() as http, http.get(result.data[0].url) as resp:
        assert resp.content_type == "video/mp4" and await resp.read() == emu_mod.FAKE_MP4


async def test_voice_name_as_speech_model(client: openai.AsyncOpenAI, emulator: Any) -> None:
    response = await client.audio.speech.create(
        model="rachel", voice="alloy", input="Hi", extra_headers={"X-Provider-Key": "sk_test_key"}
    )
    assert response.content
    sent = emulator.last("speech").json
    assert (sent["model"], sent["voice"]) == ("elevenlabs", "rachel")


async def test_upstream_headers_reach_the_client(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="openai", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-model-used"] == "openai-emu"
    assert int(raw.headers["x-usage-total-tokens"]) > 0
    speech = await client.audio.speech.with_raw_response.create(
        model="elevenlabs", voice="rachel", input="Hi", response_format="wav",
        extra_headers={"X-Provider-Key": "sk_test_key"},
    )  # fmt: skip
    assert speech.headers["x-tts-voice"] == "rachel"
    assert speech.headers["x-usage-characters"] == "2"
    assert speech.headers["x-model-used"] == "elevenlabs"


async def test_one_model_per_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="openai", messages=[{"role": "user", "content": "a longer answer"}], stream=True
    )
    models = {chunk.model async for chunk in stream}
    assert models == {"openai-emu"}


# --- a 429 on an image: wait as asked, within the budget; a 429 stays a 429 ----------------


@pytest.mark.parametrize("keyed", [False, True])
async def test_an_image_429_is_retried_only_after_its_retry_after(
    emulator: Any, start_gateway: Any, tmp_path: Path, keyed: bool
) -> None:
    emulator.fail("image", 429, times=1, retry_after="1")
    base = await start_gateway(plugins=[g4f_server_pollinations], data_dir=str(tmp_path))
    headers = {"X-Provider-Key": "sk_test_key"} if keyed else {}
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        result = await sdk.images.generate(model="flux", prompt="x", extra_headers=headers)
    assert len(result.data) == 1
    first, retry = emulator.seen("image")
    assert (first.bearer, retry.bearer) == (("sk_test_key",) * 2 if keyed else (None, None))
    assert retry.at - first.at >= 0.95  # not at once, nor after the host's interval alone


@pytest.mark.parametrize("keyed", [False, True])
async def test_an_image_429_asking_longer_than_the_budget_is_the_clients_429(
    emulator: Any, start_gateway: Any, tmp_path: Path, keyed: bool
) -> None:
    """Retry-After 9 s does not fit a 4 s budget: the client gets the 429 and the 9 s
    at once, not a retry that comes too soon (or a 504 from a wait cut off)."""
    emulator.fail("image", 429, retry_after="9")
    base = await start_gateway(plugins=[g4f_server_pollinations], data_dir=str(tmp_path), timeout=4)
    headers = {"X-Provider-Key": "sk_test_key"} if keyed else {}
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        with pytest.raises(openai.RateLimitError) as info:
            await sdk.images.generate(model="flux", prompt="x", extra_headers=headers)
    assert info.value.response.headers["retry-after"] == "9"
    assert len(emulator.seen("image")) == 1


async def test_keyed_images_that_stay_rate_limited_are_a_429_not_a_502(
    client: openai.AsyncOpenAI, emulator: Any
) -> None:
    """4 images under a 429: each retried once after Retry-After; one still refused, so
    the call fails, as the 429 it is, with its Retry-After."""
    emulator.fail("image", 429, times=5, retry_after="1")
    with pytest.raises(openai.RateLimitError) as info:
        await client.images.generate(
            model="flux", prompt="x", n=4, extra_headers={"X-Provider-Key": "sk_test_key"}
        )
    assert info.value.response.headers["retry-after"] == "1"
    assert "made 3 of 4 images" in info.value.message
    seen = emulator.seen("image")
    assert len(seen) == 8
    assert min(r.at for r in seen[4:]) - max(r.at for r in seen[:4]) >= 0.95


# --- anonymous speech a key is needed for; the anonymous queue; 402 tier or balance -------


@pytest.mark.parametrize(
    ("fields", "named", "param"),
    [
        ({"model": "elevenlabs", "voice": "rachel"}, "'rachel' (an ElevenLabs voice)", "voice"),
        ({"model": "tts-1", "voice": "alloy", "response_format": "opus"}, "'opus'",
         "response_format"),
    ],
)  # fmt: skip
async def test_anonymous_speech_that_needs_a_key_is_refused_before_any_call(
    client: openai.AsyncOpenAI, emulator: Any, fields: dict[str, str], named: str, param: str
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        await client.audio.speech.create(input="Hi", **fields)  # type: ignore[arg-type]
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "provider_auth_required"
    assert named in error["message"] and "POLLINATIONS_API_KEY" in error["message"]
    assert error["param"] == param
    # Nothing sent: not to the gateway host without a key, nor to the legacy link.
    assert [r for r in emulator.requests if not r.endpoint.endswith("_models")] == []


async def test_a_call_that_cannot_leave_the_anonymous_queue_in_time_is_a_local_429(
    emulator: Any, start_gateway: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The host takes one anonymous text call per 5 s here; the gateway's budget is 2 s.
    The second call would start too late: a 429 at once, with when to come back, not a
    504 "did not answer" for a call the upstream never saw."""
    monkeypatch.setenv("POLLINATIONS_ANON_TEXT_INTERVAL", "5")
    base = await start_gateway(plugins=[g4f_server_pollinations], data_dir=str(tmp_path), timeout=2)
    messages = [{"role": "user", "content": "hi"}]
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        await sdk.chat.completions.create(model="openai", messages=messages)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as info:
            await sdk.chat.completions.create(model="openai", messages=messages)  # type: ignore[arg-type]
    assert info.value.code == "pollinations_queue_full" and "not sent" in info.value.message
    assert info.value.response.headers["retry-after"] == "5"
    assert len(emulator.seen("chat")) == 1


async def test_a_call_waiting_for_a_busy_anonymous_slot_is_a_local_429(
    emulator: Any, start_gateway: Any, tmp_path: Path
) -> None:
    """The slot stays taken past the second call's budget: that call gives up before the
    gateway's timer, as a 429 (the first, which the upstream did see, is the 504)."""
    import asyncio

    from g4f_server.testing import wait_until

    emulator.stall_seconds = 3
    emulator.fail("chat", "stall", times=1)
    base = await start_gateway(
        plugins=[g4f_server_pollinations], data_dir=str(tmp_path), timeout=1.5
    )
    messages = [{"role": "user", "content": "hi"}]
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as sdk:
        first = asyncio.create_task(
            sdk.chat.completions.create(model="openai", messages=messages)  # type: ignore[arg-type]
        )
        await wait_until(lambda: len(emulator.seen("chat")) == 1, what="first call upstream")
        with pytest.raises(openai.RateLimitError) as info:
            await sdk.chat.completions.create(model="openai", messages=messages)  # type: ignore[arg-type]
        assert info.value.code == "pollinations_queue_full"
        with pytest.raises(openai.APIStatusError) as timed_out:
            await first
    assert timed_out.value.status_code == 504
    assert len(emulator.seen("chat")) == 1


@pytest.mark.parametrize(
    ("mode", "status", "says", "never"),
    [
        ("tier", 403, "tier is too low", "no Pollen left"),
        (402, 402, "no Pollen left", "tier"),
    ],
)
async def test_a_keyed_402_tells_a_low_tier_from_an_empty_balance(
    client: openai.AsyncOpenAI, emulator: Any, mode: Any, status: int, says: str, never: str
) -> None:
    emulator.fail("chat", mode, times=1)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(
            model="deepseek-reasoning",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Provider-Key": "sk_test_key"},
        )
    assert info.value.status_code == status
    ours = info.value.message.split(". ", 1)[1]  # after the upstream's own words
    assert says in ours and never not in ours


async def test_an_error_in_the_first_chunk_is_an_http_error_in_every_protocol(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, emulator: Any
) -> None:
    """The plugin holds a stream's first chunk back, so an upstream error in it comes
    before the gateway's first byte: an HTTP error (not an in-stream one) in the
    Responses, Anthropic and completions protocols too."""
    emulator.fail("chat", "error_chunk")
    with pytest.raises(openai.InternalServerError, match="upstream model crashed"):
        async with openai_client.responses.stream(model="openai", input="a long answer") as stream:
            async for _ in stream:
                pass
    with pytest.raises(anthropic.InternalServerError, match="upstream model crashed"):
        async with anthropic_client.messages.stream(
            model="openai", max_tokens=5, messages=[{"role": "user", "content": "a long answer"}]
        ) as messages:
            async for _ in messages.text_stream:
                pass
    with pytest.raises(openai.InternalServerError, match="upstream model crashed"):
        await openai_client.completions.create(model="openai", prompt="a long answer", stream=True)


async def test_a_rate_limit_keeps_its_retry_after_in_the_anthropic_protocol(
    anthropic_client: anthropic.AsyncAnthropic, emulator: Any
) -> None:
    emulator.fail("chat", 429, retry_after="7")
    with pytest.raises(anthropic.RateLimitError) as limited:
        await anthropic_client.messages.create(
            model="openai", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
