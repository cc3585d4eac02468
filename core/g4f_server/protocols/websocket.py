"""Writing a turn to a client over a WebSocket: the sibling of ``streaming`` for protocols
with a WebSocket mode (the Responses API's). The same renderer makes the same events;
each becomes one text message (its JSON, without the SSE framing) instead of an SSE block.

The renderer's bytes are split at the SSE block boundaries rather than rendered twice:
one grammar, and the hot path (text deltas from byte templates) stays as it is.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.logs import get_logger
from g4f_server.pipeline.media import MEDIA
from g4f_server.pipeline.transcript import Transcript
from g4f_server.pipeline.turn import ChatTurn
from g4f_server.protocols.streaming import StreamRenderer

log = get_logger("g4f_server.chat")


async def send_events(ws: web.WebSocketResponse, framed: bytes) -> None:
    """Send SSE-framed events (``event: x\\ndata: {...}\\n\\n`` blocks, or ``data:`` only)
    as one text message each."""
    for block in framed.split(b"\n\n"):
        if not block:
            continue
        at = block.find(b"data: ")
        if at >= 0:
            await ws.send_frame(block[at + 6 :], WSMsgType.TEXT)


async def stream(ws: web.WebSocketResponse, turn: ChatTurn, renderer: StreamRenderer) -> bool:
    """Send the answer as events, one message each; True when it completed. A failure
    after the first event travels as the protocol's failure event (False)."""
    request, run = turn.request, turn.run
    transcript = Transcript()
    try:
        for event in run.first:  # a model named with the first events names the whole stream
            if isinstance(event, ev.ModelUsed):
                renderer.render(event)
        lines = [renderer.start()]
        try:
            add, render = transcript.add, renderer.render
            async for batch in run.batches():
                for event in batch:
                    if isinstance(event, ev.Media) and event.url is None:
                        event = await request.app[MEDIA].publish(event, request)
                    add(event)
                    if (line := render(event)) is not None:
                        lines.append(line)
                if lines:
                    await send_events(ws, b"".join(lines))
                    lines.clear()
        except errors.G4FError as exc:
            log.info("stream_failed", provider=turn.provider, code=exc.code, status=exc.status)
            await send_events(ws, b"".join([*lines, renderer.failure(exc)]))
            return False
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            error = errors.ProviderError(f"Provider '{turn.provider}' failed unexpectedly")
            log.error("provider_crashed", provider=turn.provider, exc_info=exc)
            await send_events(ws, b"".join([*lines, renderer.failure(error)]))
            return False
    finally:
        await run.close()
    try:
        await turn.complete(transcript)
    except errors.StateUnavailableError as exc:
        await send_events(ws, b"".join([*lines, renderer.failure(exc)]))
        return False
    lines.append(renderer.end(transcript))
    await send_events(ws, b"".join(lines))
    return True
