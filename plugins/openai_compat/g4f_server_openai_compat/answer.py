"""An upstream's answer as ``g4f_server.events``: a chat completion stream, fed one
network read at a time, or one whole completion.

The stream is the hot path (one call per read, ~20 reads per answer), so ``feed`` splits
the server-sent events itself, as ``g4f_server.upstream.SSELines`` does, but without a
copy of every payload and two calls per read, and a chunk carrying nothing but the next
piece of text (most of them) becomes its ``TextDelta`` after a handful of lookups; any
other chunk takes the full walk (``_chunk``), which gives the same events for it. Both
cost about what the Pollinations plugin's reader costs (docs/performance.md, issue 26).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from g4f_server import events as ev
from g4f_server.errors import G4FError, ProviderError
from g4f_server.upstream import Lines
from g4f_server_openai_compat.upstreams import Upstream

if TYPE_CHECKING:
    from g4f_server_openai_compat.chunks import TextChunk

_FINISH: dict[str, ev.FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "end_turn": "stop",
    "eos": "stop",
}
_DONE = b"data: [DONE]"
_DONE_TAIL = b"\n\ndata: [DONE]\n\n"  # what a read that ends the stream ends with
_BETWEEN = b"\n\ndata: "  # the end of one event and the start of the next
# A read longer than this likely holds several events (a text chunk is ~150-300 bytes).
_SEVERAL = 512
# Events are frozen: the last one of every answer is shared, not built per answer.
_FINISHED = {reason: ev.Finish(reason) for reason in set(_FINISH.values())}


@functools.cache
def _typed_read() -> tuple[Callable[[bytes], list[TextChunk]], type[Exception]]:
    """The typed reader of a read's events as one JSON array and the error it raises on
    a chunk that is more than text, imported with the first streamed answer (msgspec is
    not needed by an idle server)."""
    from g4f_server_openai_compat import chunks

    return chunks.decode_many, chunks.ShapeError


class StreamReader:
    """Chat completion chunks -> events. Holds the finish reason until the stream ends:
    the usage chunk comes after it, and the kernel wants ``Finish`` last."""

    __slots__ = ("batched", "done", "error", "finish", "lines", "model_named", "typed", "up")

    def __init__(self, up: Upstream) -> None:
        self.up = up
        self.finish: ev.FinishReason | None = None
        self.model_named = False
        # Made with the first read of a stream (feed): a whole completion needs none.
        self.lines: Lines | None = None
        self.done = False  # [DONE] seen: the stream is over, whatever follows
        self.batched = True  # a read of several events parsed in one call (_at_once)
        # ... and decoded typed (chunks.py) while its chunks are text only: off for the rest
        # of the answer once one was not (the next would likely not be either).
        self.typed = True
        # An error the stream reported: raised after the events that came before it in
        # the same read have been yielded (they are part of the answer the client saw).
        self.error: G4FError | None = None

    def feed(self, piece: bytes) -> list[ev.ChatEvent]:
        """The events of the ``data:`` lines this read completed. Comments, ``event:``,
        ``id:`` and ``retry:`` lines, and payloads that are not JSON (keep-alives), are
        skipped; no limit on a line's length (a chunk may carry a large base64 blob)."""
        # A read of several whole events (a fast stream's, or one read late) is parsed
        # with one msgspec or orjson call (_at_once); a read of one (a paced stream's), told apart
        # by its length alone (each check costs), line by line.
        if (lines := self.lines) is None:
            lines = self.lines = Lines()
        if (
            len(piece) > _SEVERAL
            and piece[-2:] == b"\n\n"
            and piece[:6] == b"data: "
            and self.batched
            and not lines.partial
            and (chunks := self._at_once(piece)) is not None
        ):
            if type(chunks) is tuple:  # decoded typed: the events are made from the structs
                return self._text_only(chunks[0])
        else:
            if not (complete := lines.split(piece)):
                return []
            loads = orjson.loads
            chunks = []
            for line in complete:
                if not line:
                    continue  # the blank line that ends each event
                if not line.startswith(b"data:"):
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                if line == _DONE:  # before parsing: a failed parse costs more
                    self.done = True
                    break
                try:
                    chunks.append(loads(line[5:]))
                except orjson.JSONDecodeError:
                    if line[5:].strip() == b"[DONE]":
                        self.done = True
                        break
                    continue  # a keep-alive or a vendor's non-JSON line: not an answer
        out: list[ev.ChatEvent] = []
        for chunk in chunks:
            if type(chunk) is not dict:
                continue
            # The usual chunk: one choice whose delta is only the next piece of text.
            choices = chunk.get("choices")
            if (
                (self.model_named or not chunk.get("model"))  # else: the model to name
                and type(choices) is list
                and len(choices) == 1
                and type(choice := choices[0]) is dict
                and type(delta := choice.get("delta")) is dict
                and len(delta) == 1
                and type(text := delta.get("content")) is str
                and choice.get("finish_reason") is None
                and choice.get("index", 0) == 0
                and chunk.get("usage") is None
                and not chunk.get("error")
            ):
                if text:
                    out.append(ev.TextDelta(text))
                continue
            try:
                self._chunk(chunk, out)
            except ProviderError as exc:
                self.error = exc
                break
        return out

    def _text_only(self, read: list[TextChunk]) -> list[ev.ChatEvent]:
        """The events of a read whose chunks all decoded typed: what the walk (``_chunk``)
        gives for each, in its order (model, text, finish reason, usage), without its
        lookups and checks, which the typed decoder has done."""
        out: list[ev.ChatEvent] = []
        put = out.append
        for chunk in read:
            if not self.model_named and chunk.model:
                put(ev.ModelUsed(chunk.model))
                self.model_named = True
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                if (delta := choice.delta) is not None and (text := delta.content):
                    put(ev.TextDelta(text))
                if reason := choice.finish_reason:
                    if reason == "error":  # OpenRouter: the model failed after starting
                        self.error = self._stream_error(choice.error or "finish_reason: error")
                        return out
                    self.finish = _FINISH.get(reason, "stop")
            if (usage := chunk.usage) is not None:
                self._usage(usage, out)
        return out

    def _at_once(self, piece: bytes) -> list[Any] | tuple[list[TextChunk]] | None:
        """The chunks of a read of whole ``data: ...`` events (and a last ``data:
        [DONE]``), parsed with one orjson call: the read, less its first ``data: ``, made
        one JSON array by replacing each ``\\n\\ndata: `` between events with a comma (a
        JSON text holds no raw newline, so that sequence only ever joins two events). No
        line split, no parse call per line. None for a read that does not parse so (a
        comment, ``id:``, a keep-alive that is not JSON): it is read line by line, and so
        is the rest of the answer (each try would cost a failed parse)."""
        if piece.endswith(_DONE_TAIL):
            done, piece = True, piece[: -len(_DONE_TAIL)]
        elif piece == _DONE_TAIL[2:]:
            self.done = True
            return []
        else:
            done, piece = False, piece[:-2]
        array = b"[" + piece[6:].replace(_BETWEEN, b",") + b"]"
        if self.typed:
            decode, shape_error = _typed_read()
            try:
                read = decode(array)
            except shape_error:
                self.typed = False
            else:
                self.done = done
                return (read,)
        try:
            chunks = orjson.loads(array)
        except orjson.JSONDecodeError:
            self.batched = False
            return None
        self.done = done
        return chunks  # type: ignore[no-any-return]

    def close(self) -> list[ev.ChatEvent]:
        """The events of a last line that the stream ended without a newline after."""
        if self.done or (lines := self.lines) is None or not lines.partial:
            return []
        return self.feed(lines.rest() + b"\n")

    def _chunk(self, chunk: dict[str, Any], out: list[ev.ChatEvent]) -> None:
        error = chunk.get("error")
        if error:  # OpenRouter and others report a failure mid-stream this way
            raise self._stream_error(error)
        if not self.model_named and isinstance(chunk.get("model"), str) and chunk["model"]:
            out.append(ev.ModelUsed(chunk["model"]))
            self.model_named = True
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta is None:  # a whole message: its tool calls carry no "index"
                delta = choice.get("message") or {}
                for position, call in enumerate(delta.get("tool_calls") or ()):
                    if isinstance(call, dict):
                        call.setdefault("index", position)
            self._delta(delta or {}, out)
            reason = choice.get("finish_reason")
            if reason == "error":  # OpenRouter: the model failed after starting
                raise self._stream_error(choice.get("error") or "finish_reason: error")
            if reason:
                self.finish = _FINISH.get(reason, "stop")
        self._usage(chunk.get("usage"), out)

    @staticmethod
    def _usage(usage: Any, out: list[ev.ChatEvent]) -> None:
        if isinstance(usage, dict) and usage.get("prompt_tokens") is not None:
            out.append(
                ev.Usage(
                    int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0),
                    usage.get("total_tokens"),
                )
            )

    @staticmethod
    def _delta(delta: dict[str, Any], out: list[ev.ChatEvent]) -> None:
        # DeepSeek, vLLM and llama.cpp say reasoning_content; OpenRouter, Groq and
        # Ollama say reasoning.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(ev.ReasoningDelta(reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            out.append(ev.TextDelta(content))
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if isinstance(arguments, dict | list):  # a few servers send parsed JSON
                arguments = orjson.dumps(arguments).decode()
            out.append(
                ev.ToolCallDelta(
                    index=int(call.get("index") or 0),
                    id=call.get("id") or None,
                    name=function.get("name") or None,
                    arguments=arguments or "",
                )
            )

    def _stream_error(self, error: Any) -> ProviderError:
        message = error.get("message") if isinstance(error, dict) else str(error)
        return ProviderError(
            f"{self.up.provider} failed while answering: {message or error}",
            code="upstream_stream_error",
        )

    def whole(self, completion: Any) -> list[ev.ChatEvent]:
        """A non-streamed completion object as the same events."""
        out: list[ev.ChatEvent] = []
        if isinstance(completion, dict):
            self._chunk(completion, out)  # an error object raises here
        out.append(self._finished())
        return out

    def end(self) -> list[ev.ChatEvent]:
        return [self._finished()]

    def _finished(self) -> ev.Finish:
        reason = self.finish or "stop"
        return _FINISHED.get(reason) or ev.Finish(reason)
