"""Writing a turn to a client as a stream: the one loop every protocol's streamed
grammar goes through (its renderer decides the bytes; the framing is ``protocols/sse``).

One write per batch the provider yielded, the renderer's start with the first. A failure
after the headers travels in the stream in the protocol's own shape, never as a silent
stop. The turn itself (``pipeline/turn.py``) knows no wire.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiohttp import web

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.logs import get_logger
from g4f_server.pipeline.media import MEDIA
from g4f_server.pipeline.transcript import Transcript
from g4f_server.pipeline.turn import ChatTurn
from g4f_server.protocols import sse

log = get_logger("g4f_server.chat")


class StreamRenderer(Protocol):
    """A protocol's streamed grammar: bytes to write for the start, each event, the end
    and a failure after the first byte (each already framed, e.g. as SSE)."""

    def start(self) -> bytes: ...

    def render(self, event: ev.ChatEvent) -> bytes | None: ...

    def end(self, transcript: Transcript) -> bytes: ...

    def failure(self, error: errors.G4FError) -> bytes: ...


async def stream(turn: ChatTurn, renderer: StreamRenderer) -> web.StreamResponse:
    """Stream the answer: one write per batch the provider yielded, the renderer's start
    with the first. A failure after the headers travels in the stream in the protocol's
    own shape, never as a silent stop."""
    request, run = turn.request, turn.run
    transcript = Transcript()
    try:
        response = await sse.open_stream(request, turn.headers)
        for event in run.first:  # a model named with the first events names the whole stream
            if isinstance(event, ev.ModelUsed):
                renderer.render(event)
        lines = [renderer.start()]
        try:
            add, render, write = transcript.add, renderer.render, response.write
            async for batch in run.batches():
                for event in batch:
                    if isinstance(event, ev.Media) and event.url is None:
                        event = await request.app[MEDIA].publish(event, request)
                    add(event)
                    if (line := render(event)) is not None:
                        lines.append(line)
                if lines:
                    await write(b"".join(lines))
                    lines.clear()
        except errors.G4FError as exc:
            log.info("stream_failed", provider=turn.provider, code=exc.code, status=exc.status)
            await response.write_eof(b"".join([*lines, renderer.failure(exc)]))
            return response
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            error = errors.ProviderError(f"Provider '{turn.provider}' failed unexpectedly")
            log.error("provider_crashed", provider=turn.provider, exc_info=exc)
            await response.write_eof(b"".join([*lines, renderer.failure(error)]))
            return response
    finally:
        await run.close()
    try:
        await turn.complete(transcript)
    except (errors.StateUnavailableError, errors.PayloadTooLargeError) as exc:  # not stored
        await response.write_eof(b"".join([*lines, renderer.failure(exc)]))
        return response
    lines.append(renderer.end(transcript))
    await response.write_eof(b"".join(lines))  # the last chunks and the end in one write
    return response
