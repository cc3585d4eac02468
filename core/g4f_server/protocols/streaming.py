"""Writing a turn to a client as a stream: the one loop every protocol's streamed
grammar goes through (its renderer decides the bytes; the framing is ``protocols/sse``).

One write per batch the provider yielded, the renderer's start with the first. A failure
after the headers travels in the stream in the protocol's own shape, never as a silent
stop. The turn itself (``pipeline/turn.py``) knows no wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.events import TextDelta
from g4f_server.logs import get_logger
from g4f_server.pipeline.media import MEDIA
from g4f_server.pipeline.transcript import Transcript
from g4f_server.pipeline.turn import ChatTurn
from g4f_server.protocols import sse
from g4f_server.web.jsonio import dumps

log = get_logger("g4f_server.chat")


class StreamRenderer(Protocol):
    """A protocol's streamed grammar: bytes to write for the start, each event, the end
    and a failure after the first byte (each already framed, e.g. as SSE)."""

    def start(self) -> bytes: ...

    def render(self, event: ev.ChatEvent) -> bytes | None: ...

    def end(self, transcript: Transcript) -> bytes: ...

    def failure(self, error: errors.G4FError) -> bytes: ...


# A renderer may also have ``text_parts``: the bytes before and after a text delta's JSON
# string when its chunk is exactly ``before + dumps(text) + after`` (chat completions);
# the relay then writes those chunks itself. It is read again after every other event (a
# model named mid-stream changes it); a renderer without it renders each delta. One whose
# chunks differ per delta (Responses numbers its events) may also have ``splice_texts``,
# called as ``splice`` is, to write a run of deltas itself.
_NO_PARTS = (None, None)


Send = Callable[[bytes], Awaitable[object]]


async def stream(turn: ChatTurn, renderer: StreamRenderer) -> web.StreamResponse:
    """Stream the answer as server-sent events (``open_sse``, then ``relay``)."""
    response, write = await open_sse(turn)
    await relay(turn, renderer, write, response.write_eof)
    return response


async def open_sse(turn: ChatTurn) -> tuple[web.StreamResponse, Send]:
    """The SSE response for ``turn``, its status and headers final, and the ``write`` of
    the stream writer ``prepare`` returned (aiohttp's ``AbstractStreamWriter``): the
    response's own ``write`` is a coroutine around it that checks what ``relay`` never
    does (bytes, written before the end), one coroutine per batch; the writer's is the
    same framing, buffering and drain. The stream still ends with the response's
    ``write_eof``. A route that calls this and ``relay`` itself (as chat completions
    does) spares the frame of ``stream``, which every chunk's wake-up would pass
    through."""
    try:
        response = sse.event_stream(turn.headers)
        writer = await response.prepare(turn.request)
    except BaseException:
        await turn.run.close()  # nothing was sent: release the upstream
        raise
    assert writer is not None  # a new response: prepared now, not ended
    return response, writer.write


_NUL_ESCAPED = b"\\u0000"


def splice(lines: list[bytes], texts: list[str], before: bytes, after: bytes) -> None:
    """Append the chunks of consecutive text deltas (``before + dumps(text) + after``
    each) to ``lines``, and empty ``texts``. Encoding is most of a chunk's cost, so a run
    is encoded at once: joined by NUL, which JSON writes as ``\\u0000``, then split there.
    That is exact only when no text has a NUL or a backslash of its own (a ``\\u0000``
    written for a text's ``\\`` and ``u0000`` would look the same); otherwise, or when a
    text cannot be encoded at all, each is encoded alone, as a chunk at a time would be."""
    if len(texts) > 1:
        joined = "\0".join(texts)
        if "\\" not in joined and joined.count("\0") == len(texts) - 1:
            try:
                encoded = dumps(joined)
            except TypeError:  # a lone surrogate: each alone below, so the error comes
                pass  # after the chunks before it, as before
            else:
                split = b'"' + after + before + b'"'  # one chunk's end, the next's start
                lines += (before, encoded.replace(_NUL_ESCAPED, split), after)
                texts.clear()
                return
    for delta in texts:
        lines += (before, dumps(delta), after)
    texts.clear()


async def relay(turn: ChatTurn, renderer: StreamRenderer, write: Send, end: Send) -> bool:
    """Write the answer through a transport (SSE, a WebSocket): one ``write`` per batch
    the provider yielded, the renderer's start with the first, and the last chunks with
    the end in one ``end``. A failure after the first byte travels in the stream in the
    protocol's own shape, never as a silent stop. True when the answer completed."""
    request, run = turn.request, turn.run
    transcript = Transcript()
    watchdog, cut = run.watchdog, run.cut
    run.begin(None)  # ChatRun.read's wait, inlined here (each copy names the other)
    batch = run.first
    last = cut is not None and cut.found is not None  # the first batch ended at a stop
    try:
        for event in batch:  # a model named with the first events names the whole stream
            if isinstance(event, ev.ModelUsed):
                renderer.render(event)
        lines = [renderer.start()]
        try:
            add, render, text = transcript.add, renderer.render, transcript.text.append
            next_item, clock = run.stream.__anext__, watchdog.clock
            before, after = getattr(renderer, "text_parts", None) or _NO_PARTS
            put = getattr(renderer, "splice_texts", splice)
            texts: list[str] = []  # the batch's text deltas not yet spliced
            while True:
                for event in batch:
                    if type(event) is TextDelta:  # most events: straight to the text
                        text(delta := event.text)
                        if before is not None:  # and its chunk spliced below: no call
                            if delta:
                                texts.append(delta)
                            continue
                    else:
                        if texts:  # the text before this event comes first (and is kept
                            # in ``lines`` should publishing the media below fail)
                            put(lines, texts, before, after)  # type: ignore[arg-type]
                        if isinstance(event, ev.Media) and event.url is None:
                            event = await request.app[MEDIA].publish(event, request)
                        add(event)
                    if (line := render(event)) is not None:
                        lines.append(line)
                    if before is not None:
                        before, after = renderer.text_parts  # type: ignore[attr-defined]
                if texts:
                    if len(texts) == 1 and put is splice:  # one delta a read: no call
                        lines += (before, dumps(texts[0]), after)
                        texts.clear()
                    else:
                        put(lines, texts, before, after)  # type: ignore[arg-type]
                if lines:
                    await write(b"".join(lines))
                    lines.clear()
                if last:
                    break
                watchdog.since = clock()  # writing to the client is not waiting for it
                try:
                    item = await next_item()
                except StopAsyncIteration:
                    watchdog.since = None
                    run.ended = True
                    if cut is None or not (batch := cut.flush()):
                        break
                    last = True  # held back as a possible start of a stop: text after all
                    continue
                except asyncio.CancelledError:
                    if watchdog.fired():
                        raise run.timeout_error(None) from None
                    raise
                watchdog.since = None
                batch = item if isinstance(item, list) else (item,)
                if cut is not None:
                    batch = cut.feed(batch)
                    last = cut.found is not None  # the rest is dropped; close() ends it
        except errors.G4FError as exc:
            log.info("stream_failed", provider=turn.provider, code=exc.code, status=exc.status)
            await end(b"".join([*lines, renderer.failure(exc)]))
            return False
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            error = errors.ProviderError(f"Provider '{turn.provider}' failed unexpectedly")
            log.error("provider_crashed", provider=turn.provider, exc_info=exc)
            await end(b"".join([*lines, renderer.failure(error)]))
            return False
    finally:
        if (closing := run.closing()) is not None:
            await closing
    try:
        if turn.completes:  # most turns store nothing: no coroutine then
            await turn.complete(transcript)
    except (errors.StateUnavailableError, errors.PayloadTooLargeError) as exc:  # not stored
        await end(b"".join([*lines, renderer.failure(exc)]))
        return False
    lines.append(renderer.end(transcript))
    await end(b"".join(lines))  # the last chunks and the end in one write
    return True
