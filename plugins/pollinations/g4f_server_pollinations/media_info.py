"""What the plugin reads from audio bytes itself: whether they are audio at all (the label
can lie), the length of a WAV or MP3 file (the anonymous transcription path gets none from
the upstream), and MP3 pieces joined into one file (anonymous speech of a long text is read
in pieces)."""

from __future__ import annotations

import contextlib
import io
import wave

from g4f_server.errors import ProviderError
from g4f_server.mediatypes import sniff
from g4f_server_pollinations.errors import message_of

# MPEG audio frame header tables (ISO 11172-3 / 13818-3), in kbit/s and Hz.
_BITRATES = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES[(2, 3)] = _BITRATES[(2, 2)]
_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}


def is_audio(data: bytes, fmt: str) -> bool:
    """Whether ``data`` is audio, from its first bytes (the label can lie: an error page
    sent as ``audio/mpeg``). Raw PCM has no signature: anything but text passes."""
    sniffed = sniff(data)
    if sniffed is not None:
        return sniffed[0].startswith("audio/")
    return fmt.startswith("pcm") and bool(data) and data.lstrip()[:1] not in (b"<", b"{", b"[")


def check_audio(data: bytes, fmt: str, label: str) -> None:
    """Raise unless ``data`` is audio (``label``: what the upstream called it)."""
    if not is_audio(data, fmt):
        raise ProviderError(
            f"Pollinations answered {label!r} that is not audio: {message_of(data)}",
            code="upstream_not_audio",
        )


def id3v2_length(data: bytes) -> int:
    """Bytes of the ID3v2 tag that opens ``data`` (0 without one)."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:  # "syncsafe": 7 bits per byte
        size = size << 7 | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _frame(data: bytes, at: int) -> tuple[int, int, int] | None:
    """(frame length, samples, sample rate) of the MPEG audio frame at ``at``, if one is."""
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version = {3: 1, 2: 2, 0: 25}.get(data[at + 1] >> 3 & 3)
    layer = {3: 1, 2: 2, 1: 3}.get(data[at + 1] >> 1 & 3)
    bitrate_index, rate_index = data[at + 2] >> 4, data[at + 2] >> 2 & 3
    if version is None or layer is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _BITRATES[(1 if version == 1 else 2, layer)][bitrate_index] * 1000
    rate = _RATES[version][rate_index]
    padding = data[at + 2] >> 1 & 1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate
    samples = 1152 if layer == 2 or version == 1 else 576
    return samples // 8 * bitrate // rate + padding, samples, rate


def mp3_duration(data: bytes) -> float | None:
    """Seconds of MPEG audio, counted frame by frame (exact for VBR too)."""
    at, seconds, frames = id3v2_length(data), 0.0, 0
    while (frame := _frame(data, at)) is not None:
        length, samples, rate = frame
        seconds += samples / rate
        frames += 1
        at += length
    return seconds if frames else None


def wav_duration(data: bytes) -> float | None:
    with contextlib.suppress(wave.Error, EOFError, ValueError), wave.open(io.BytesIO(data)) as wav:
        rate = wav.getframerate()
        return wav.getnframes() / rate if rate else None
    return None


def duration(data: bytes, fmt: str | None) -> float | None:
    """Seconds of a ``wav`` or ``mp3`` file; None for other formats or unreadable bytes."""
    if fmt == "wav":
        return wav_duration(data)
    if fmt == "mp3":
        return mp3_duration(data)
    return None


def join_mp3(parts: list[bytes]) -> bytes:
    """MP3 files as one: MPEG frames simply follow each other, so only the tags between
    them go (each later part's ID3v2 header, each earlier part's trailing ID3v1 tag)."""
    out = []
    for i, part in enumerate(parts):
        if i:
            part = part[id3v2_length(part) :]
        if i < len(parts) - 1 and len(part) >= 128 and part[-128:-125] == b"TAG":
            part = part[:-128]
        out.append(part)
    return b"".join(out)
