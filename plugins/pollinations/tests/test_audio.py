"""Speech and transcription against the emulator, anonymous and keyed."""

from __future__ import annotations

import pytest

import g4f_server_pollinations as plugin
from g4f_server import errors
from g4f_server.provider import SpeechRequest, TranscriptionRequest


async def test_anonymous_speech_uses_legacy_link(emulator, ctx, emu_mod) -> None:
    result = await plugin.create_speech(
        SpeechRequest(input="Hello, world & more", model="elevenlabs", voice="nova"), ctx()
    )
    assert result.mime_type == "audio/mpeg" and result.data == emu_mod.FAKE_MP3
    seen = emulator.last("legacy_get")
    assert seen.host == "legacy-text" and seen.path == "/Hello, world & more"
    assert seen.query == {"model": "openai-audio", "voice": "nova"}


async def test_keyed_speech_uses_gateway(emulator, ctx, emu_mod) -> None:
    request = SpeechRequest(
        input="Hi",
        model="elevenlabs",
        voice="rachel",
        response_format="wav",
        speed=1.5,
        instructions="cheerful",
        seed=3,
    )
    result = await plugin.create_speech(request, ctx(api_key="sk_test_key"))
    assert result.mime_type == "audio/wav" and result.data.startswith(b"RIFF")
    assert result.headers["x-tts-voice"] == "rachel"
    seen = emulator.last("speech")
    assert seen.bearer == "sk_test_key"
    assert seen.json == {
        "model": "elevenlabs",
        "input": "Hi",
        "voice": "rachel",
        "response_format": "wav",
        "speed": 1.5,
        "instruct": "cheerful",
        "seed": 3,
    }


async def test_anonymous_non_mp3_needs_a_key(emulator, ctx) -> None:
    with pytest.raises(errors.ProviderAuthError, match="POLLINATIONS_API_KEY"):
        await plugin.create_speech(SpeechRequest(input="Hi", response_format="flac"), ctx())


async def test_speech_notice_is_an_error(emulator, ctx) -> None:
    emulator.fail("legacy_get", "notice")
    with pytest.raises(errors.ProviderError, match="service notice"):
        await plugin.create_speech(SpeechRequest(input="Hi"), ctx())


async def test_speech_rate_limited(emulator, ctx) -> None:
    emulator.fail("speech", 429, retry_after="9")
    with pytest.raises(errors.ProviderRateLimitError) as info:
        await plugin.create_speech(SpeechRequest(input="Hi"), ctx(api_key="sk_test_key"))
    assert info.value.retry_after == 9


@pytest.mark.parametrize("fmt", ["json", "verbose_json", "srt"])
async def test_keyed_transcription(emulator, ctx, emu_mod, fmt: str) -> None:
    wav = emu_mod.wav_bytes()
    request = TranscriptionRequest(
        file=wav,
        filename="clip.wav",
        content_type="audio/wav",
        model="whisper",
        language="en",
        response_format=fmt,
    )
    result = await plugin.transcribe(request, ctx(api_key="sk_test_key"))
    assert result.text == "hello world"
    seen = emulator.last("transcription")
    assert seen.bearer == "sk_test_key"
    assert seen.files["file"] == ("clip.wav", wav)
    assert seen.form["model"] == "whisper" and seen.form["language"] == "en"
    if fmt == "json":
        assert seen.form["response_format"] == "json" and result.segments == []
    else:
        assert seen.form["response_format"] == "verbose_json"
        assert result.segments[0].text == "hello world" and result.duration == 0.2


async def test_anonymous_transcription_through_chat(emulator, ctx, emu_mod) -> None:
    request = TranscriptionRequest(file=emu_mod.wav_bytes(), filename="a.wav", model="whisper")
    result = await plugin.transcribe(request, ctx())
    assert result.text == "hello world"
    seen = emulator.last("chat")
    assert seen.host == "legacy-text" and seen.json["model"] == "openai-audio"
    part = seen.json["messages"][1]["content"][1]
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"


async def test_anonymous_transcription_other_formats_rejected(ctx) -> None:
    request = TranscriptionRequest(file=b"x", filename="a.ogg", content_type="audio/ogg")
    with pytest.raises(errors.InvalidRequestError, match="WAV or MP3"):
        await plugin.transcribe(request, ctx())


async def test_transcription_errors(emulator, ctx) -> None:
    emulator.fail("transcription", 402)
    request = TranscriptionRequest(file=b"x", filename="a.wav")
    with pytest.raises(errors.ProviderPaymentError):
        await plugin.transcribe(request, ctx(api_key="sk_test_key"))
    with pytest.raises(errors.ProviderAuthError, match="rejected"):
        await plugin.transcribe(request, ctx(api_key="sk_nope"))


@pytest.mark.parametrize("keyed", [False, True])
async def test_speech_that_is_not_audio_is_an_error(emulator, ctx, keyed: bool) -> None:
    emulator.fail("speech" if keyed else "legacy_get", "html_audio", times=1)
    context = ctx(api_key="sk_test_key") if keyed else ctx()
    with pytest.raises(errors.ProviderError, match="not audio") as info:
        await plugin.create_speech(SpeechRequest(input="Hi"), context)
    assert info.value.status == 502 and "502 Bad Gateway" in info.value.message


@pytest.mark.parametrize("fmt", ["mp3", "wav", "opus", "aac", "flac", "pcm"])
async def test_every_real_audio_format_passes_the_sniff(emulator, ctx, fmt: str) -> None:
    request = SpeechRequest(input="Hi", response_format=fmt)
    result = await plugin.create_speech(request, ctx(api_key="sk_test_key"))
    assert result.data


async def test_long_anonymous_speech_is_read_in_pieces(emulator, ctx, emu_mod) -> None:
    text = " ".join(["Émile était là, déjà à l'été."] * 50)  # 1,500 characters
    assert len(text) == 1499
    result = await plugin.create_speech(SpeechRequest(input=text), ctx())
    pieces = emulator.seen("legacy_get")
    assert len(pieces) > 1 and all(len(p.raw_path) < 4096 for p in pieces)
    assert " ".join(p.path[1:] for p in pieces) == text
    frames = emu_mod.FAKE_MP3[10:]  # one ID3 header, then every piece's frames
    assert result.data == emu_mod.FAKE_MP3 + frames * (len(pieces) - 1)


def mp3_frames(count: int) -> bytes:
    """MPEG-1 layer III frames at 128 kbit/s, 44.1 kHz: 417 bytes, 1152 samples each."""
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + (b"\xff\xfb\x90\x00" + bytes(413)) * count


@pytest.mark.parametrize("kind", ["wav", "mp3"])
@pytest.mark.parametrize("keyed", [False, True])
async def test_transcription_duration_is_read_from_the_file(
    emulator, ctx, emu_mod, kind: str, keyed: bool
) -> None:
    data = emu_mod.wav_bytes(1.5) if kind == "wav" else mp3_frames(100)
    expected = 1.5 if kind == "wav" else 100 * 1152 / 44100
    request = TranscriptionRequest(file=data, filename=f"a.{kind}", response_format="srt")
    result = await plugin.transcribe(request, ctx(api_key="sk_test_key") if keyed else ctx())
    if keyed:  # the upstream said 0.2 in its verbose_json: its word stands
        assert result.duration == 0.2
    else:
        assert result.duration == pytest.approx(expected)


def test_text_pieces_cut_sentences_then_words_then_characters() -> None:
    from urllib.parse import quote

    from g4f_server_pollinations.audio import text_pieces

    assert text_pieces("One. Two three.", 100) == ["One. Two three."]
    assert text_pieces("One. Two three.", 12) == ["One.", "Two three."]
    assert text_pieces("aaaa bbbb", 4) == ["aaaa", "bbbb"]
    cjk = "语" * 40  # no spaces, 9 encoded bytes a character
    pieces = text_pieces(cjk, 100)
    assert "".join(pieces) == cjk and all(len(quote(p, safe="")) <= 100 for p in pieces)


async def test_a_voice_given_as_the_model_is_that_elevenlabs_voice(emulator, ctx) -> None:
    context = ctx(api_key="sk_test_key")
    await plugin.list_models(context)
    result = await plugin.create_speech(SpeechRequest(input="Hi", model="rachel"), context)
    assert result.data
    sent = emulator.last("speech").json
    assert (sent["model"], sent["voice"]) == ("elevenlabs", "rachel")


async def test_anonymous_elevenlabs_voice_needs_a_key(emulator, ctx) -> None:
    """The legacy link reads with openai-audio voices only: an ElevenLabs voice would
    silently become alloy there."""
    for request in (
        SpeechRequest(input="Hi", model="rachel"),
        SpeechRequest(input="Hi", model="elevenlabs", voice="rachel"),
    ):
        with pytest.raises(errors.ProviderAuthError, match="POLLINATIONS_API_KEY"):
            await plugin.create_speech(request, ctx())
    assert emulator.seen("legacy_get") == []
