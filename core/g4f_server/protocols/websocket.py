"""Writing a turn to a client over a WebSocket: the sibling of ``streaming`` for protocols
with a WebSocket mode (the Responses API's). The same renderer makes the same events;
each becomes one text message (its JSON, without the SSE framing) instead of an SSE block.

The renderer's bytes are split at the SSE block boundaries rather than rendered twice:
one grammar, and the hot path (text deltas from byte templates) stays as it is.
"""

from __future__ import annotations

import functools

from aiohttp import WSMsgType, web

from g4f_server.logs import get_logger
from g4f_server.pipeline.turn import ChatTurn
from g4f_server.protocols.streaming import StreamRenderer, relay

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
    """Send the answer as events, one message each (``streaming.relay``); True when it
    completed. A failure after the first event travels as the protocol's failure event."""
    send = functools.partial(send_events, ws)
    return await relay(turn, renderer, send, send)
