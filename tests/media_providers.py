"""Test providers for images, audio, cookies and conversations (no network but 127.0.0.1).

Media is made with the standard library: ``png`` writes a real PNG (zlib + struct),
``wav`` a real WAV (``wave``), so the kernel's type sniffing sees genuine files.
"""

from __future__ import annotations

import io
import json
import math
import wave
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from g4f_server import errors, events, hookimpl
from g4f_server.provider import (
    EmbeddingRequest,
    Embeddings,
    ImageRequest,
    MediaItem,
    ModelInfo,
    ProviderContext,
    ProviderInfo,
    SpeechRequest,
    SpeechResult,
    Transcription,
    TranscriptionRequest,
)
from g4f_server.provider import TranscriptSegment as Segment
from g4f_server.requests import ChatRequest
from g4f_server.testing import png_bytes, wav_bytes


def png(width: int = 2, height: int = 2, *, noise: bool = False) -> bytes:
    return png_bytes(width, height, noise=noise)


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A silent mono 16-bit WAV of ``seconds``."""
    return wav_bytes(seconds, rate)


def wav_duration(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getnframes() / w.getframerate()


@dataclass
class Painter:
    """Images as bytes (``mode="bytes"``) or URLs on ``upstream`` (``mode="url"``)."""

    name: str = "Painter"
    mode: str = "bytes"
    upstream: str = ""
    path: str = "/img/ok.png"
    noise: bool = False
    side: int = 8
    priority: int = 100
    fail: errors.G4FError | None = None
    seen: list[ImageRequest] = field(default_factory=list)

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, priority=self.priority, public_names=True)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        return [ModelInfo(f"{self.name.lower()}-img", frozenset({"image"}), aliases=("dall-e-3",))]

    @hookimpl
    async def generate_images(self, request: ImageRequest, ctx: ProviderContext) -> list[MediaItem]:
        self.seen.append(request)
        if self.fail is not None:
            raise self.fail
        if self.mode == "url":
            return [
                MediaItem(url=f"{self.upstream}{self.path}?i={i}", fetch_headers={"X-Key": "k1"})
                for i in range(request.n)
            ]
        return [
            MediaItem(
                data=png(self.side, self.side, noise=self.noise),
                revised_prompt=f"{request.prompt}!",
            )
            for _ in range(request.n)
        ]


@dataclass
class Speaker:
    """Speech (whole WAV or streamed MP3-looking chunks) and transcription of WAVs."""

    name: str = "Speaker"
    stream: bool = False
    break_stream: bool = False  # fail after the first chunk
    fail: errors.G4FError | None = None
    seen: list[Any] = field(default_factory=list)

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, public_names=True)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        return [
            ModelInfo("say-1", frozenset({"speech"}), aliases=("tts-1",)),
            ModelInfo("hear-1", frozenset({"transcription"}), aliases=("whisper-1",)),
        ]

    @hookimpl
    async def create_speech(self, request: SpeechRequest, ctx: ProviderContext) -> SpeechResult:
        self.seen.append(request)
        if self.fail is not None:
            raise self.fail
        if not self.stream:
            return SpeechResult(mime_type="audio/wav", data=wav(0.25))

        async def chunks() -> AsyncIterator[bytes]:
            yield b"ID3\x03\x00"
            if self.break_stream:
                raise errors.ProviderError("upstream hung up")
            for word in request.input.split():
                yield word.encode()

        return SpeechResult(mime_type="audio/mpeg", chunks=chunks())

    @hookimpl
    async def transcribe(
        self, request: TranscriptionRequest, ctx: ProviderContext
    ) -> Transcription:
        self.seen.append(request)
        duration = wav_duration(request.file)
        return Transcription(
            text=f"heard {duration:g} seconds",
            language=request.language or "en",
            duration=duration,
            segments=[
                Segment(0.0, duration / 2, "heard"),
                Segment(duration / 2, duration, f"{duration:g} seconds"),
            ],
        )


@dataclass
class Memo:
    """A chat provider with upstream state: it counts turns in ``ConversationState`` and
    answers with what it saw, so tests can check state and history."""

    name: str = "Memo"
    cookie_domains: tuple[str, ...] = ()
    seen: list[dict[str, Any]] = field(default_factory=list)

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, cookie_domains=self.cookie_domains, public_names=True)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        return [ModelInfo("memo-1", frozenset({"chat"}))]

    @hookimpl
    async def chat(self, request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[Any]:
        turn = (ctx.conversation or {}).get("turn", 0) + 1
        self.seen.append({"conversation": ctx.conversation, "messages": request.messages})
        yield events.TextDelta(f"turn {turn}")
        yield events.ConversationState({"turn": turn})


@dataclass
class CookieReader:
    """Answers with the cookies the kernel lets it read for each requested host."""

    name: str = "CookieReader"
    cookie_domains: tuple[str, ...] = ("example.com",)

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, cookie_domains=self.cookie_domains, public_names=True)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        return [ModelInfo("cookie-1", frozenset({"chat"}))]

    @hookimpl
    async def chat(self, request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[Any]:
        hosts = request.messages[-1].text().split()
        yield events.TextDelta(json.dumps({h: ctx.cookies(h) for h in hosts}))


@dataclass
class Illustrator:
    """A chat provider answering with an image as bytes (published by the kernel)."""

    name: str = "Illustrator"

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, public_names=True)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        return [ModelInfo("draw-chat", frozenset({"chat"}))]

    @hookimpl
    async def chat(self, request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[Any]:
        yield events.TextDelta("here:")
        yield events.Media("image", data=png(), mime_type="image/png", alt="red square")


def vector_for(item: str | list[int], size: int) -> list[float]:
    """The Embedder's vector for one input: deterministic, different for each input, so
    tests can compute what they must get back (and in which order)."""
    seed = zlib.crc32(item.encode() if isinstance(item, str) else repr(item).encode())
    return [((seed >> (j % 24)) % 1000 + j) / 1000 - 0.5 for j in range(size)]


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Embedder:
    """Embeddings (``vec-1``, ``size`` numbers, takes ``dimensions``; ``vec-fixed``,
    which does not), token ids read only when ``tokens``; ``broken`` makes a bad
    answer: ``count`` (one vector short), ``ragged``, ``nan``, ``empty``, ``wrong``
    (not Embeddings), ``deaf`` (``dimensions`` ignored, as some upstreams do)."""

    name: str = "Embedder"
    size: int = 4
    tokens: bool = False  # its models declare token_input
    usage: bool = True  # reports prompt_tokens (else the kernel estimates)
    priority: int = 100
    broken: str | None = None
    fail: errors.G4FError | None = None
    seen: list[EmbeddingRequest] = field(default_factory=list)

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, priority=self.priority, public_names=True)

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        caps = frozenset({"embeddings", "token_input"} if self.tokens else {"embeddings"})
        return [ModelInfo("vec-1", caps), ModelInfo("vec-fixed", caps)]

    @hookimpl
    async def embed(self, request: EmbeddingRequest, ctx: ProviderContext) -> Embeddings:
        self.seen.append(request)
        if self.fail is not None:
            raise self.fail
        size = self.size
        if request.dimensions is not None and self.broken != "deaf":
            if request.model == "vec-fixed":
                raise errors.InvalidRequestError("vec-fixed does not take 'dimensions'")
            size = request.dimensions
        vectors: list[Any] = [vector_for(item, size) for item in request.inputs]
        if self.broken == "count":
            vectors.pop()
        elif self.broken == "ragged":
            vectors[-1] = vectors[-1][:-1]
        elif self.broken == "nan":
            vectors[0][0] = math.nan
        elif self.broken == "empty":
            vectors = []
        elif self.broken == "wrong":
            return vectors  # type: ignore[return-value]
        words = sum(len(i.split()) if isinstance(i, str) else len(i) for i in request.inputs)
        return Embeddings(vectors, model=request.model, prompt_tokens=words if self.usage else None)
