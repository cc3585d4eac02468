"""POST /v1/audio/speech and /v1/audio/transcriptions (and their /api/{provider} forms)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG
from g4f_server.logs import get_logger
from g4f_server.pipeline.services import call_provider, read_multipart
from g4f_server.provider import SpeechResult, Transcription
from g4f_server.providers.router import Route
from g4f_server.requests import SpeechRequest, TranscriptionForm, TranscriptionRequest
from g4f_server.web.body import read_model
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response
from g4f_server.web.validation import parse_model

log = get_logger("g4f_server.audio")

SPEECH_MIME = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_MIME = re.compile(r"^[a-z]+/[a-z0-9.+-]+(;[ a-z0-9=.+-]*)?$")
# Response headers a provider may pass on; the rest (length, encoding...) are ours.
_PASSED_HEADERS = ("content-disposition", "x-audio-duration")


@request_body(SpeechRequest)
async def create_speech(request: web.Request) -> web.StreamResponse:
    """Turn text into speech; the audio bytes are streamed back (OpenAI-compatible)."""
    config = request.app[CONFIG]
    body = await read_model(request, SpeechRequest)

    async def check(route: Route, result: Any) -> tuple[SpeechResult, bytes]:
        if not isinstance(result, SpeechResult):
            raise errors.ProviderError(f"Provider '{route.entry.name}' returned no audio")
        if result.data is not None:
            first = result.data
        elif result.chunks is not None:
            # The first chunk is part of the attempt: failing before it still fails over.
            first = await anext(aiter(result.chunks), b"")
        else:
            first = b""
        if not first:
            raise errors.ProviderError(f"Provider '{route.entry.name}' returned empty audio")
        return result, first

    _, headers, (result, first) = await call_provider(
        request, body, capability="speech", hook="create_speech", check=check
    )
    headers.update({k: v for k, v in result.headers.items() if k.lower() in _PASSED_HEADERS})
    mime = result.mime_type.strip().lower()
    headers["Content-Type"] = mime if _MIME.match(mime) else SPEECH_MIME[body.response_format]
    if result.data is not None:
        return web.Response(body=result.data, headers=headers)
    assert result.chunks is not None
    return await _stream_audio(request, headers, first, result.chunks, config.stream_timeout)


async def _stream_audio(
    request: web.Request,
    headers: dict[str, str],
    first: bytes,
    chunks: AsyncIterator[bytes],
    idle_timeout: float,
) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    await response.write(first)
    try:
        while True:
            async with asyncio.timeout(idle_timeout):
                chunk = await anext(chunks, None)
            if chunk is None:
                break
            await response.write(chunk)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        # The status is sent; cutting the body short is the only honest signal left.
        log.warning("speech_stream_failed", error=repr(exc))
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    await response.write_eof()
    return response


# --- transcriptions ------------------------------------------------------------------------

_KNOWN_FIELDS = ("model", "language", "prompt", "temperature", "response_format", "provider")


@request_body(TranscriptionForm, "multipart/form-data")
async def create_transcription(request: web.Request) -> web.Response:
    """Transcribe an audio file (multipart `file`; json, text, srt, vtt or verbose_json)."""
    config = request.app[CONFIG]
    fields, files = await read_multipart(request, config.max_upload_size)
    upload = next((f for f in files if f.field == "file"), None)
    if upload is None or not upload.data:
        raise errors.InvalidRequestError(
            "Attach the audio as the multipart file field 'file'", param="file"
        )
    values: dict[str, Any] = {k: fields[k][-1] for k in _KNOWN_FIELDS if k in fields}
    extra = {k: v if len(v) > 1 else v[0] for k, v in fields.items() if k not in _KNOWN_FIELDS}
    extra.pop("api_key", None)
    body = parse_model(
        TranscriptionRequest,
        {
            **values,
            "file": upload.data,
            "filename": upload.filename or "audio",
            "content_type": upload.content_type,
            "api_key": (fields.get("api_key") or [None])[-1],
            "extra": extra,
        },
    )

    async def check(route: Route, result: Any) -> Transcription:
        if not isinstance(result, Transcription):
            raise errors.ProviderError(f"Provider '{route.entry.name}' returned no transcription")
        return result

    route, headers, result = await call_provider(
        request, body, capability="transcription", hook="transcribe", check=check
    )
    fmt = body.response_format
    if fmt == "text":
        return web.Response(text=result.text, content_type="text/plain", headers=headers)
    if fmt in ("srt", "vtt"):
        text = to_subtitles(result, vtt=fmt == "vtt")
        ctype = "text/vtt" if fmt == "vtt" else "application/x-subrip"
        return web.Response(text=text, content_type=ctype, headers=headers)
    if fmt == "verbose_json":
        return json_response(verbose_json(result, body), headers=headers)
    return json_response(
        {"text": result.text, "model": route.model, "provider": route.entry.name}, headers=headers
    )


def _segments(result: Transcription) -> list[tuple[float, float, str]]:
    if result.segments:
        return [(s.start, s.end, s.text) for s in result.segments]
    return [(0.0, result.duration or 0.0, result.text)]


def verbose_json(result: Transcription, body: TranscriptionRequest) -> dict[str, Any]:
    segments = _segments(result)
    return {
        "task": "transcribe",
        "language": result.language or body.language or "unknown",
        "duration": result.duration if result.duration is not None else segments[-1][1],
        "text": result.text,
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": start,
                "end": end,
                "text": text,
                "tokens": [],
                "temperature": body.temperature or 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": 0.0,
            }
            for i, (start, end, text) in enumerate(segments)
        ],
    }


def _timestamp(seconds: float, sep: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def to_subtitles(result: Transcription, *, vtt: bool) -> str:
    sep = "." if vtt else ","
    blocks = []
    for i, (start, end, text) in enumerate(_segments(result), start=1):
        cue = f"{_timestamp(start, sep)} --> {_timestamp(end, sep)}\n{text.strip()}\n"
        blocks.append(cue if vtt else f"{i}\n{cue}")
    return ("WEBVTT\n\n" if vtt else "") + "\n".join(blocks)
