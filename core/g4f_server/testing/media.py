"""Valid images and audio made with the standard library, for emulators to return and
tests to upload (no pytest, no third-party package: an emulator script imports them)."""

from __future__ import annotations

import io
import math
import os
import struct
import wave
import zlib


def png_bytes(width: int = 1, height: int = 1, *, noise: bool = False) -> bytes:
    """A valid RGB PNG; ``noise`` fills it with random pixels so it does not compress."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    def row() -> bytes:
        return b"\x00" + (os.urandom(width * 3) if noise else b"\xff\x00\x00" * width)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(row() for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def wav_bytes(seconds: float = 0.2, rate: int = 8000, *, tone_hz: float | None = None) -> bytes:
    """A mono 16-bit WAV: silence, or a sine tone of ``tone_hz``."""
    frames = int(seconds * rate)
    if tone_hz is None:
        samples = b"\x00\x00" * frames
    else:
        samples = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * tone_hz * i / rate)))
            for i in range(frames)
        )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()
