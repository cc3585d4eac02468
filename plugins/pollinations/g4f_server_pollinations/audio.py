"""Text-to-speech and speech-to-text.

With a key both go to the gateway's OpenAI-style audio endpoints. Anonymous calls use the
legacy text host: speech through its ``GET /<text>?model=openai-audio`` link (MP3 only),
transcription through a chat turn with an ``input_audio`` part.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
import yarl

from g4f_server.errors import InvalidRequestError, ProviderAuthError, ProviderError
from g4f_server.events import TextDelta
from g4f_server.provider import ProviderContext, SpeechResult, Transcription
from g4f_server.provider import TranscriptSegment as Segment
from g4f_server_pollinations import errors, media_info, transport
from g4f_server_pollinations.chat import AUDIO_MIME, read_completion
from g4f_server_pollinations.config import MAX_URL, api_key, auth_headers, settings
from g4f_server_pollinations.models import (
    DEFAULT_SPEECH,
    ELEVENLABS_VOICES,
    LEGACY_SPEECH_MODEL,
    OPENAI_VOICES,
    voice_model,
)

if TYPE_CHECKING:
    from g4f_server.provider import SpeechRequest, TranscriptionRequest

# Speech options the gateway documents beyond OpenAI's; taken from the body's extras.
_SPEECH_EXTRA = ("duration", "instrumental", "seed", "style")
# Passed on to the client as they are (x-usage-characters, x-usage-total-tokens...).
_PASS_HEADERS = ("x-model-used", "x-tts-voice", "x-usage-")
_SENTENCE_END = re.compile(r"(?<=[.!?;:…])\s+")
_TRANSCRIBE_PROMPT = (
    "Transcribe the audio exactly. Answer with the transcript only, without comments."
)


def _passed_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(_PASS_HEADERS)}


def speech_body(request: SpeechRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model or DEFAULT_SPEECH,
        "input": request.input,
        "voice": request.voice,
        "response_format": request.response_format,
        "speed": request.speed,
    }
    if request.instructions:
        body["instruct"] = request.instructions
    extra = request.model_extra or {}
    body.update({k: extra[k] for k in _SPEECH_EXTRA if extra.get(k) is not None})
    return body


async def _audio_result(resp: aiohttp.ClientResponse, fmt: str) -> SpeechResult:
    kind = resp.content_type
    if kind.startswith("audio/") or kind == "application/octet-stream":
        data = await resp.read()
        media_info.check_audio(data, fmt, kind)
        mime = kind if kind.startswith("audio/") else AUDIO_MIME.get(fmt, "audio/mpeg")
        return SpeechResult(mime_type=mime, data=data, headers=_passed_headers(resp.headers))
    text = (await resp.content.read(64 * 1024)).decode("utf-8", "replace")
    if errors.is_notice(text):
        raise errors.notice_error(text)
    raise ProviderError(
        f"Pollinations answered {kind!r} instead of audio: {errors.message_of(text)}"
    )


def text_pieces(text: str, room: int) -> list[str]:
    """``text`` cut into pieces whose URL encoding fits in ``room`` characters: whole
    sentences where they fit, else whole words, else characters."""
    out: list[str] = []

    def fits(piece: str) -> bool:
        return len(quote(piece, safe="")) <= room

    def pack(units: list[str], sep: str, finer: Callable[[str], None] | None) -> None:
        current = ""
        for unit in units:
            joined = f"{current}{sep}{unit}" if current else unit
            if fits(joined):
                current = joined
                continue
            if current:
                out.append(current)
            current = ""
            if fits(unit) or finer is None:
                current = unit
            else:
                finer(unit)
        if current:
            out.append(current)

    def chars(unit: str) -> None:
        pack(list(unit), "", None)

    def words(unit: str) -> None:
        pack(unit.split(), " ", chars)

    pack(_SENTENCE_END.split(text.strip()), " ", words)
    return out


async def _legacy_speech(request: SpeechRequest, ctx: ProviderContext) -> SpeechResult:
    """The legacy read-aloud link, one GET per piece of a text too long for one URL (the
    host answers 414 above ~4 KB; an accented character takes 6 bytes encoded), the MP3
    pieces joined."""
    cfg = settings()
    query = "?" + urlencode({"model": LEGACY_SPEECH_MODEL, "voice": request.voice})
    room = MAX_URL - len(cfg.text_url) - 1 - len(query)
    deadline = transport.Deadline(ctx)  # one budget for all the pieces
    results = []
    for piece in text_pieces(request.input, room):
        url = f"{cfg.text_url}/{quote(piece, safe='')}{query}"
        async with (
            transport.anonymous_slot(ctx, cfg, "text", keyed=False, deadline=deadline),
            transport.call(
                ctx, "GET", yarl.URL(url, encoded=True), keyed=False, what="speech"
            ) as resp,
        ):
            results.append(await _audio_result(resp, "mp3"))
    if len(results) == 1:
        return results[0]
    data = media_info.join_mp3([r.data or b"" for r in results])
    headers = dict(results[0].headers)
    for name in headers:  # counts of the whole text: the pieces' summed
        values = [r.headers.get(name, "") for r in results]
        if name.startswith("x-usage-") and all(v.isdigit() for v in values):
            headers[name] = str(sum(map(int, values)))
    return SpeechResult(mime_type=results[0].mime_type, data=data, headers=headers)


def _check_anonymous_speech(request: SpeechRequest) -> None:
    """What the anonymous read-aloud link cannot do is a 403 that names the key setting,
    not a keyless call to the gateway (whose 401 would say no more)."""
    if request.voice not in OPENAI_VOICES:
        kind = " (an ElevenLabs voice)" if request.voice in ELEVENLABS_VOICES else ""
        what, param = f"the voice {request.voice!r}{kind}", "voice"
    elif request.response_format != "mp3":
        what, param = f"the format {request.response_format!r}", "response_format"
    else:
        return
    raise ProviderAuthError(
        f"Anonymous Pollinations speech reads MP3 with the OpenAI voices only "
        f"({', '.join(OPENAI_VOICES)}); {what} needs a Pollinations key: "
        f"{errors.KEY_HINT}",
        param=param,
    )


async def create_speech(request: SpeechRequest, ctx: ProviderContext) -> SpeechResult:
    cfg = settings()
    key = api_key(ctx, cfg)
    if voice := voice_model(ctx, request.model):
        request = request.model_copy(update={"model": DEFAULT_SPEECH, "voice": voice})
    # The legacy link reads MP3 with openai-audio's voices only (another voice quietly
    # becomes alloy there); the rest needs the gateway, which takes no call without a key:
    # refused here, before anything is sent.
    if key is None:
        _check_anonymous_speech(request)
        result = await _legacy_speech(request, ctx)
        ctx.response_headers.update(result.headers)
        return result
    async with transport.call(
        ctx, "POST", f"{cfg.gen_url}/v1/audio/speech", keyed=True, what="speech",
        data=orjson.dumps(speech_body(request)),
        headers={"Content-Type": "application/json", **auth_headers(key)},
    ) as resp:  # fmt: skip
        result = await _audio_result(resp, request.response_format)
    ctx.response_headers.update(result.headers)  # passed on to the client as they are
    return result


def _audio_format(request: TranscriptionRequest) -> str | None:
    name = request.filename.lower()
    kind = request.content_type.lower()
    if name.endswith(".wav") or "wav" in kind:
        return "wav"
    if name.endswith(".mp3") or "mpeg" in kind or "mp3" in kind:
        return "mp3"
    return None


def _transcription(data: Any, language: str | None) -> Transcription:
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ProviderError("Pollinations answered a transcription without text")
    segments = [
        Segment(start=float(s.get("start", 0)), end=float(s.get("end", 0)), text=str(s["text"]))
        for s in data.get("segments") or ()
        if isinstance(s, dict) and isinstance(s.get("text"), str)
    ]
    duration = data.get("duration")
    return Transcription(
        text=data["text"].strip(),
        language=data.get("language") or language,
        duration=float(duration) if isinstance(duration, int | float) else None,
        segments=segments,
    )


async def _transcribe_keyed(
    request: TranscriptionRequest, ctx: ProviderContext, url: str, key: str
) -> Transcription:
    form = aiohttp.FormData()
    form.add_field(
        "file", request.file, filename=request.filename or "audio.wav",
        content_type=request.content_type or "application/octet-stream",
    )  # fmt: skip
    form.add_field("model", request.model)
    # Segments are needed for srt/vtt/verbose_json, which the kernel renders itself.
    detailed = request.response_format in ("verbose_json", "srt", "vtt")
    form.add_field("response_format", "verbose_json" if detailed else "json")
    for name in ("language", "prompt", "temperature"):
        if (value := getattr(request, name)) is not None:
            form.add_field(name, str(value))
    async with transport.call(
        ctx, "POST", url, keyed=True, what="transcription", data=form, headers=auth_headers(key)
    ) as resp:
        if resp.content_type.startswith("text/plain"):
            return Transcription(text=(await resp.text()).strip(), language=request.language)
        try:
            data = orjson.loads(await resp.read())
        except orjson.JSONDecodeError:
            raise ProviderError("Pollinations sent a malformed transcription") from None
    return _transcription(data, request.language)


async def _transcribe_anonymous(
    request: TranscriptionRequest, ctx: ProviderContext, url: str
) -> Transcription:
    fmt = _audio_format(request)
    if fmt is None:
        raise InvalidRequestError(
            "Anonymous Pollinations transcription takes WAV or MP3 only; convert the file, "
            "or set POLLINATIONS_API_KEY for the other formats",
            param="file",
        )
    instruction = _TRANSCRIBE_PROMPT
    if request.language:
        instruction += f" The audio is in {request.language}."
    user_text = request.prompt or "Transcribe this audio."
    body = {
        "model": LEGACY_SPEECH_MODEL,
        "stream": False,
        "messages": [
            {"role": "system", "content": instruction},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": user_text},
                    {
                        "type": "input_audio",
                        "input_audio": {
                            "data": base64.b64encode(request.file).decode(),
                            "format": fmt,
                        },
                    },
                ],
            },
        ],
    }
    cfg = settings()
    async with (
        transport.anonymous_slot(ctx, cfg, "text", keyed=False),
        transport.call(
            ctx, "POST", url, keyed=False, what="transcription", data=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        ) as resp,
    ):  # fmt: skip
        if resp.content_type.startswith("text/plain"):
            text = await resp.text()
        else:
            try:
                data = orjson.loads(await resp.read())
            except orjson.JSONDecodeError:
                raise ProviderError("Pollinations sent malformed JSON") from None
            text = "".join(e.text for e in read_completion(data, "mp3") if isinstance(e, TextDelta))
    if errors.is_notice(text):
        raise errors.notice_error(text)
    return Transcription(text=text.strip(), language=request.language)


async def transcribe(request: TranscriptionRequest, ctx: ProviderContext) -> Transcription:
    cfg = settings()
    key = api_key(ctx, cfg)
    if key:
        url = f"{cfg.gen_url}/v1/audio/transcriptions"
        result = await _transcribe_keyed(request, ctx, url, key)
    else:
        result = await _transcribe_anonymous(request, ctx, f"{cfg.text_url}/openai")
    if result.duration is None:  # the chat path never says; srt and verbose_json need it
        result.duration = media_info.duration(request.file, _audio_format(request))
    return result
