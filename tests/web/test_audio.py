"""Speech and transcription through the gateway, with generated WAVs, and the openai SDK."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest

from g4f_server import errors
from tests.media_providers import Speaker, wav


@pytest.fixture
def gateway(start_gateway: Any, tmp_path: Any) -> Any:
    async def start(*plugins: object, **config: Any) -> str:
        return await start_gateway(plugins=list(plugins), data_dir=str(tmp_path), **config)

    return start


def form(audio: bytes | None, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        data.add_field(name, value)
    if audio is not None:
        data.add_field("file", audio, filename="speech.wav", content_type="audio/wav")
    return data


async def transcribe(base: str, audio: bytes | None, path: str = "/v1", **fields: str) -> Any:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{base}{path}/audio/transcriptions", data=form(audio, **fields)) as resp,
    ):
        return resp.status, resp.headers["Content-Type"], await resp.text()


async def test_speech_returns_bytes_with_content_type(gateway: Any) -> None:
    speaker = Speaker()
    base = await gateway(speaker)
    body = {"model": "tts-1", "input": "Hello, this is a test.", "voice": "nova", "speed": 1.5}
    async with aiohttp.ClientSession() as s, s.post(base + "/v1/audio/speech", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "audio/wav"
        assert resp.headers["X-G4F-Provider"] == "Speaker"
        assert await resp.read() == wav(0.25)
    seen = speaker.seen[-1]
    assert (seen.model, seen.voice, seen.speed) == ("say-1", "nova", 1.5)


async def test_speech_streams_chunks(gateway: Any) -> None:
    base = await gateway(Speaker(stream=True))
    body = {"input": "one two three", "response_format": "mp3"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + "/api/Speaker/audio/speech", json=body) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "audio/mpeg"
        assert await resp.read() == b"ID3\x03\x00onetwothree"


async def test_speech_errors(gateway: Any) -> None:
    base = await gateway(Speaker(fail=errors.ProviderAuthError("log in first")))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/audio/speech", json={"input": "hi"}) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "provider_auth_required"
        async with s.post(base + "/v1/audio/speech", json={"input": ""}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["param"] == "input"
        async with s.post(base + "/v1/audio/speech", json={"input": "x", "model": "nope"}) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "model_not_found"


async def test_transcription_json_and_text(gateway: Any) -> None:
    speaker = Speaker()
    base = await gateway(speaker)
    status, ctype, text = await transcribe(base, wav(2.0), model="whisper-1", language="de")
    assert status == 200 and ctype.startswith("application/json")
    body = json.loads(text)
    assert body["text"] == "heard 2 seconds" and body["provider"] == "Speaker"
    seen = speaker.seen[-1]
    assert (seen.model, seen.language, seen.filename) == ("hear-1", "de", "speech.wav")
    assert seen.file == wav(2.0)
    status, ctype, text = await transcribe(base, wav(2.0), response_format="text")
    assert status == 200 and ctype.startswith("text/plain") and text == "heard 2 seconds"


async def test_transcription_subtitles_and_verbose(gateway: Any) -> None:
    base = await gateway(Speaker())
    status, ctype, text = await transcribe(base, wav(3.0), response_format="srt")
    assert status == 200 and ctype.startswith("application/x-subrip")
    assert text == (
        "1\n00:00:00,000 --> 00:00:01,500\nheard\n\n2\n00:00:01,500 --> 00:00:03,000\n3 seconds\n"
    )
    status, ctype, text = await transcribe(base, wav(3.0), response_format="vtt")
    assert status == 200 and ctype.startswith("text/vtt")
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nheard\n")
    status, _, text = await transcribe(base, wav(3.0), response_format="verbose_json")
    body = json.loads(text)
    assert body["duration"] == 3.0 and body["language"] == "en" and body["task"] == "transcribe"
    assert [(s["id"], s["start"], s["end"]) for s in body["segments"]] == [
        (0, 0.0, 1.5),
        (1, 1.5, 3.0),
    ]


async def test_transcription_extra_fields_reach_the_provider(gateway: Any) -> None:
    speaker = Speaker()
    base = await gateway(speaker)
    data = form(wav(0.5), prompt="names: Ada")
    data.add_field("timestamp_granularities[]", "word")
    data.add_field("timestamp_granularities[]", "segment")
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + "/api/Speaker/audio/transcriptions", data=data) as resp,
    ):
        assert resp.status == 200
    seen = speaker.seen[-1]
    assert seen.prompt == "names: Ada"
    assert seen.extra == {"timestamp_granularities[]": ["word", "segment"]}


async def test_transcription_rejects_bad_uploads(gateway: Any) -> None:
    base = await gateway(Speaker(), max_upload_size=4096)
    status, _, text = await transcribe(base, None, model="whisper-1")
    assert status == 400 and json.loads(text)["error"]["param"] == "file"
    status, _, text = await transcribe(base, wav(1.0))  # 16 KB > 4 KB
    assert status == 413 and json.loads(text)["error"]["code"] == "payload_too_large"
    status, _, text = await transcribe(base, wav(0.1), response_format="docx")
    assert status == 400 and json.loads(text)["error"]["param"] == "response_format"
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + "/v1/audio/transcriptions", json={"file": "x"}) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_content_type"


async def test_openai_sdk_speech_and_transcriptions(gateway: Any, tmp_path: Any) -> None:
    base = await gateway(Speaker(), api_key="sk-audio")
    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-audio", max_retries=0)
    speech = await client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello", response_format="wav"
    )
    assert speech.response.headers["content-type"] == "audio/wav"
    assert speech.content == wav(0.25)
    path = tmp_path / "clip.wav"
    path.write_bytes(wav(1.0))
    with path.open("rb") as f:
        result = await client.audio.transcriptions.create(model="whisper-1", file=f)
    assert result.text == "heard 1 seconds"
    with path.open("rb") as f:
        verbose = await client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    assert verbose.duration == 1.0 and verbose.language == "en"
    with path.open("rb") as f:
        srt = await client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="srt"
        )
    assert "00:00:00,500 --> 00:00:01,000" in str(srt)
    await client.close()


async def test_speech_failing_mid_stream_is_a_truncated_body(gateway: Any) -> None:
    base = await gateway(Speaker(stream=True, break_stream=True))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/audio/speech", json={"input": "a b"}) as resp:
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
        # The server is fine afterwards.
        async with s.get(base + "/health") as resp:
            assert resp.status == 200
