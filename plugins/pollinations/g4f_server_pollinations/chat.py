"""Chat: the request body Pollinations accepts, its JSON/SSE answers read into events,
and the limits we apply ourselves where the legacy host ignores them."""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from g4f_server.errors import G4FError, ProviderError
from g4f_server.events import (
    ChatEvent,
    ChatItem,
    Citation,
    Finish,
    Media,
    ModelUsed,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from g4f_server.provider import ProviderContext
from g4f_server.upstream import Lines
from g4f_server_pollinations import errors, media_info, transport
from g4f_server_pollinations.config import api_key, auth_headers, settings

if TYPE_CHECKING:
    from g4f_server.provider import ChatRequest
    from g4f_server_pollinations.chunks import TextChunk, TextCompletion

# OpenAI fields forwarded when the client set them (both hosts accept these).
_FORWARD = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "seed",
)
_FORWARD_SET = frozenset(_FORWARD)
# Extra (non-schema) fields the upstream documents; anything else stays with us.
_FORWARD_EXTRA = (
    "reasoning_effort",
    "logit_bias",
    "modalities",
    "audio",
    "voice",
    "prompt_cache_key",
)
# Only the gateway documents these; the legacy host ignores them, so we enforce them.
_GATEWAY_EXTRA = (
    "thinking",
    "thinking_budget",
    "repetition_penalty",
    "logprobs",
    "top_logprobs",
)
_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
AUDIO_MIME = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "pcm": "audio/pcm",
    "pcm16": "audio/pcm",
}
# Chars per token for the legacy host's max_tokens, which we must cut ourselves.
_CHARS_PER_TOKEN = 4
# Events are frozen, so the last one of every answer can be shared.
_FINISHED = {reason: Finish(reason) for reason in set(_FINISH.values())}  # type: ignore[arg-type]
# ModelUsed events are frozen too: one per model name (there are a few), not per answer.
_MODELS: dict[str, ModelUsed] = {}
# A read that ends the stream ends with this (``_Answer._batch``).
_DONE_TAIL = b"\n\ndata: [DONE]\n\n"
_DONE_ALONE = _DONE_TAIL[2:]
_BETWEEN = b"\n\ndata: "  # the end of one event and the start of the next
# A read longer than this likely holds several events (a text chunk is ~150-300 bytes).
_SEVERAL = 512
# Upstream response headers passed on to the client, as they are (docs: README).
_PASSED = (b"x-model-used", b"x-usage-")
# A streamed chunk's TextDelta, made as TextDelta(text) makes it but without the Python
# frame of its __init__ (~450 instructions a chunk): the contract's events are slotted
# dataclasses (events.py). tests/test_chunks.py holds the two equal, field by field.
_new = object.__new__
_set_text = TextDelta.__dict__["text"].__set__


def _model_used(name: str) -> ModelUsed:
    if (event := _MODELS.get(name)) is None:
        if len(_MODELS) >= 64:  # an upstream naming ever new models: stay bounded
            _MODELS.clear()
        event = _MODELS[name] = ModelUsed(name)
    return event


@functools.cache
def _typed() -> tuple[Callable[[bytes | bytearray], TextChunk], type[Exception]]:
    """The typed chunk reader and the error it raises on a chunk that is not text only,
    imported with the first streamed answer (msgspec is not needed by an idle server)."""
    from g4f_server_pollinations import chunks

    return chunks.decode, chunks.ShapeError


@functools.cache
def _typed_read() -> tuple[Callable[[bytes], list[TextChunk]], type[Exception]]:
    """The typed reader of a whole network read's chunks as one JSON array (``_batch``)."""
    from g4f_server_pollinations import chunks

    return chunks.decode_many, chunks.ShapeError


@functools.cache
def _typed_completion() -> tuple[Callable[[bytes], TextCompletion], type[Exception]]:
    """The same for a whole JSON completion, imported with the first one."""
    from g4f_server_pollinations import chunks

    return chunks.decode_completion, chunks.ShapeError


def build_body(request: ChatRequest, *, keyed: bool) -> dict[str, Any]:
    """The upstream request body: what the client set and the upstream accepts."""
    messages = request.message_dicts()
    for item in messages:
        if item["role"] == "developer":  # not every upstream model knows this role
            item["role"] = "system"
    # The fields read from the instance dict: an attribute read on a pydantic model takes
    # Python's slow path (BaseModel has a __getattr__), and token_limit is a property over
    # two of them (~2.5k instructions a request for the five below).
    fields = request.__dict__
    body: dict[str, Any] = {"model": fields["model"], "messages": messages}
    # Only what the client set can be forwarded (each of these defaults to None); most
    # requests set none of them, and skip both loops.
    if not _FORWARD_SET.isdisjoint(request.model_fields_set):
        for name in _FORWARD:
            value = getattr(request, name)
            if value is not None:
                body[name] = (
                    value.model_dump(exclude_none=True, mode="json")
                    if hasattr(value, "model_dump")
                    else [t.model_dump(exclude_none=True, mode="json") for t in value]
                    if name == "tools"
                    else value
                )
        if "tools" in body:
            body.pop("seed", None)  # the upstream caches by seed; tool answers must not repeat
    if extra := request.model_extra:
        for name in _FORWARD_EXTRA + (_GATEWAY_EXTRA if keyed else ()):
            if extra.get(name) is not None:
                body[name] = extra[name]
    if keyed:
        # request.token_limit: max_completion_tokens (current name) or max_tokens (older)
        if limit := fields["max_completion_tokens"] or fields["max_tokens"]:
            body["max_tokens"] = limit
        if stop := fields["stop"]:
            body["stop"] = stop
        if user := fields["user"]:
            body["user"] = user
    wants_audio = "audio" in (body.get("modalities") or ())
    if wants_audio:
        body.setdefault("audio", {"voice": body.get("voice", "alloy"), "format": "mp3"})
    # Audio answers come as one base64 blob; streaming them buys nothing.
    body["stream"] = fields["stream"] and not wants_audio
    if body["stream"] and keyed:
        body["stream_options"] = {"include_usage": True}
    return body


def usage_of_headers(headers: dict[str, str]) -> Usage | None:
    """Usage from ``x-usage-prompt-*-tokens`` / ``x-usage-completion-*-tokens`` (per kind:
    text, cached, audio, image) and ``x-usage-total-tokens``."""
    prompt = completion = 0
    seen = False
    for name, value in headers.items():
        if not value.isdigit() or not name.endswith("-tokens"):
            continue
        if name.startswith("x-usage-prompt-"):
            prompt, seen = prompt + int(value), True
        elif name.startswith("x-usage-completion-"):
            completion, seen = completion + int(value), True
    if not seen:
        return None
    total = headers.get("x-usage-total-tokens", "")
    return Usage(prompt, completion, total_tokens=int(total) if total.isdigit() else None)


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict) or not isinstance(prompt := data.get("prompt_tokens"), int):
        return None
    if len(data) == 3 and "completion_tokens" in data and "total_tokens" in data:
        details = {}  # only the three counts (the usual): no "*_details" to look for
    else:
        details = {
            k: v for k, v in data.items() if k.endswith("_details") and isinstance(v, dict) and v
        }
    # Positional, in the field order (prompt, completion, total, estimated, details):
    # keywords cost a dict per call.
    completion = int(data.get("completion_tokens") or 0)
    return Usage(prompt, completion, data.get("total_tokens"), False, details)


def _citations(data: dict[str, Any], seen: set[str]) -> list[Citation]:
    out = []
    for item in data.get("citations") or ():
        url = item if isinstance(item, str) else item.get("url") if isinstance(item, dict) else None
        if isinstance(url, str) and url not in seen:
            seen.add(url)
            title = item.get("title") if isinstance(item, dict) else None
            out.append(Citation(url=url, title=title))
    return out


def _raise_if_error(data: Any) -> None:
    if isinstance(data, dict) and data.get("error"):
        raise ProviderError(
            f"Pollinations reported an error: {errors.message_of(orjson.dumps(data))}"
        )


def read_completion(data: Any, audio_format: str) -> list[ChatEvent]:
    if isinstance(data, list):  # seen from the legacy host: a one-element array
        data = data[0] if data else {}
    _raise_if_error(data)
    if not isinstance(data, dict) or not data.get("choices"):
        raise ProviderError("Pollinations answered without choices")
    events: list[ChatEvent] = []
    if data.get("model"):
        events.append(_model_used(str(data["model"])))
    events += _citations(data, set())
    choice = data["choices"][0]
    message = choice.get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        events.append(ReasoningDelta(reasoning))
    content = message.get("content")
    audio = message.get("audio") if isinstance(message.get("audio"), dict) else None
    if isinstance(content, str) and content:
        events.append(TextDelta(content))
    elif audio and isinstance(audio.get("transcript"), str):
        events.append(TextDelta(audio["transcript"]))
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        events.append(
            ToolCallDelta(
                index=i,
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    if audio and isinstance(audio.get("data"), str):
        mime = AUDIO_MIME.get(audio_format, "audio/mpeg")
        sound = base64.b64decode(audio["data"])
        media_info.check_audio(sound, audio_format, "message.audio")
        events.append(Media(kind="audio", data=sound, mime_type=mime))
    if usage := _usage(data.get("usage")):
        events.append(usage)
    if choice.get("finish_reason"):
        events.append(Finish(_FINISH.get(choice["finish_reason"], "stop")))  # type: ignore[arg-type]
    return events


def _audio_format(body: dict[str, Any]) -> str:
    """The audio format asked for (an audio answer is checked against it)."""
    return (body.get("audio") or {}).get("format", "mp3")


async def _read_whole(
    resp: aiohttp.ClientResponse, body: dict[str, Any], answer: _Answer
) -> list[ChatEvent]:
    """The events of an answer that is not an SSE stream (read in one piece)."""
    kind = resp.content_type
    if kind == "application/json" or kind.endswith("+json"):
        # A body that came with its headers: taken as it is, without read()'s loop of
        # awaits (three coroutines) for a body that is all there.
        content = resp.content
        raw = content.read_nowait() if content.is_eof() else await resp.read()
        return answer.completion(raw, _audio_format(body))
    if kind.startswith("audio/"):
        data = await resp.read()
        media_info.check_audio(data, _audio_format(body), kind)
        return answer.whole([Media(kind="audio", data=data, mime_type=kind)])
    if kind in ("text/html", "application/xhtml+xml"):  # a CDN's or proxy's page, not a reply
        raise errors.html_error(kind, await resp.content.read(64 * 1024))
    if kind.startswith("text/"):  # the legacy host answers plain text for some models
        text = await resp.text()
        return answer.whole([TextDelta(text)] if text else [])
    raise ProviderError(f"Pollinations answered an unexpected content type {kind!r}")


class _StopCut:
    """Cuts the text at the first stop sequence, holding back just enough to see one
    split across chunks."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.buf += text
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[: min(hits)], ""
            return out, True
        cut = max(0, len(self.buf) - self.hold)
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


# Without stop sequences a _StopCut passes text through and never changes: one is shared.
_NO_STOPS = _StopCut([])


class _Answer:
    """One answer turned into events, with plain method calls only.

    A streamed answer is fed as it arrives (``feed``), a whole one at once (``whole``),
    and ``close`` ends it; each returns the events ready to go out (one reused list), so
    ``chat`` is the only generator between the socket and the kernel. Each network read
    is parsed completely before its events go out: an error chunk read together with the
    first text still comes before any output, while the router can fail over.

    On the legacy host it also applies what that host ignores (stop sequences,
    max_tokens), and holds back the first events while the text may still be the
    deprecation notice (``errors.notice_verdict``): usually only until the first word.
    The gateway host never sends the notice, so there nothing is held back.
    """

    __slots__ = (
        "batched",
        "budget",
        "carry",
        "chunks",
        "cited",
        "cut",
        "done",
        "emitted",
        "ended",
        "header_usage",
        "held",
        "held_text",
        "lead",
        "legacy",
        "lines",
        "model_seen",
        "out",
        "put",
        "reason",
        "saw_tools",
        "saw_usage",
        "stop",
    )

    def __init__(self, request: ChatRequest, *, keyed: bool) -> None:
        self.out: list[ChatEvent] = []
        # Made with the first read of a stream that is not decoded whole (feed): a whole
        # answer, and a fast stream whose every read is, need none.
        self.lines: Lines | None = None
        self.done = False  # [DONE] seen, or the answer was cut: read no further
        self.cut = False  # cut at a stop sequence or max_tokens (legacy)
        self.model_seen = False
        self.chunks = 0  # SSE data events read (an event stream with none is no answer)
        # Blank lines before the first text are dropped (None once text went out); held
        # here while the answer so far is only whitespace.
        self.lead: str | None = ""
        self.cited: set[str] | None = None  # made with the first citation
        self.ended = False  # the Finish is out already (_text_completion): no close()
        self.reason: str | None = None
        self.saw_tools = False
        self.saw_usage = False
        self.header_usage: Usage | None = None  # from x-usage-*: used if the body has none
        self.carry: ModelUsed | None = None  # from x-model-used: goes with the first events
        self.legacy = not keyed
        # The gateway honours max_tokens and stop itself; the legacy host does neither.
        self.stop = _StopCut(list(request.stop)) if not keyed and request.stop else _NO_STOPS
        limit = None if keyed else request.token_limit
        self.budget = limit * _CHARS_PER_TOKEN if limit else None
        self.emitted = 0
        self.held: list[ChatEvent] | None = [] if self.legacy else None
        self.held_text = ""
        self.put = self._hold if self.legacy else self.out.append
        # A read of whole text-only events is decoded in one call (_batch); off for the
        # legacy host (its text takes the stop and notice checks) and, for the rest of the
        # answer, once a read was more than text (tool calls, reasoning: the next would be
        # too, and each try would cost a failed decode).
        self.batched = not self.legacy

    def upstream_headers(self, raw: tuple[tuple[bytes, bytes], ...], ctx: ProviderContext) -> None:
        """x-model-used and x-usage-*: passed on to the client, and read as the events they
        mean (the model named here is the answer's: chunks may not name it again). Read
        from the raw pairs: most headers are skipped on their first byte, "x" or "X" when
        its 0x20 bit is set (an int compare; a slice and a tuple lookup cost ~500
        instructions a header more). An HTTP field name is never empty: the parser
        refuses one."""
        passed: dict[str, str] = {}
        for name, value in raw:
            if (name[0] | 0x20) == 0x78 and (low := name.lower()).startswith(_PASSED):
                passed[low.decode("latin-1")] = value.decode("latin-1")
        if not passed:
            return
        ctx.response_headers.update(passed)
        if model := passed.get("x-model-used"):
            self.model_seen = True
            self.carry = _model_used(model)
        self.header_usage = usage_of_headers(passed)

    def _new_batch(self) -> list[ChatEvent]:
        """A fresh list for the next events: each list returned is the caller's to keep."""
        self.out = out = []
        if not self.legacy:
            self.put = out.append
        if self.carry is not None:
            self.put(self.carry)
            self.carry = None
        return out

    def feed(self, piece: bytes) -> list[ChatEvent]:
        """The events of the next piece of an SSE body. No limit on the line length:
        a chunk can carry a large base64 blob."""
        out = self._new_batch()
        lines = self.lines  # made with the first read that is not taken whole (below)
        # A read of several events (a fast stream's, or one read late): one decode for all.
        # A read of one event (a paced stream's) costs less line by line, and is told
        # apart by its length alone: each check costs ~700 instructions, a bytes method
        # call ~1.5k, and bytes' `in` ~3.6k (it tries the operand as an int first).
        if (
            self.batched
            and len(piece) > _SEVERAL
            and piece[-2:] == b"\n\n"
            and piece[:6] == b"data: "
            and (lines is None or not lines.partial)
            and self._batch(piece)
        ):
            return out
        if lines is None:
            lines = self.lines = Lines()
        complete = lines.split(piece)
        if not complete:
            return out
        loads = orjson.loads
        # Most chunks: text only, read from the typed form (not on the legacy host, whose
        # text takes the stop and notice checks of the full walk). Read inline: a method
        # call per chunk was a tenth of the chunk's cost.
        decode, shape_error = (None, None) if self.legacy else _typed()
        put = self.put  # out.append: fixed for this batch when not legacy
        for line in complete:
            if not line:
                continue  # the blank line that ends each event
            if not line.startswith(b"data:"):
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue  # CR, comment, event: or id:
            if line == b"data: [DONE]":  # before parsing: a failed parse costs ~2 us
                self.done = True
                break
            self.chunks += 1
            if decode is not None:
                try:
                    text = decode(line[5:])
                except shape_error:  # more than text, another shape, or not JSON: see below
                    pass
                else:
                    # Nothing but text, a model name, a finish reason and usage (the typed
                    # decoder refuses any more): the same as _chunk makes of it. Written
                    # twice, here and in _batch's loop (change both): a call per chunk
                    # would cost a tenth of the chunk.
                    if not self.model_seen and text.model:
                        self.model_seen = True
                        put(_model_used(text.model))
                    if choices := text.choices:
                        choice = choices[0]
                        if (delta := choice.delta) is not None and (content := delta.content):
                            if self.lead is not None:
                                content = self._lead(content)
                            if content:
                                put(event := _new(TextDelta))
                                _set_text(event, content)
                        if reason := choice.finish_reason:
                            self.reason = _FINISH.get(reason, "stop")
                    if text.usage is not None and (usage := _usage(text.usage)):
                        self.saw_usage = True
                        put(usage)
                    continue
            try:
                chunk = loads(line[5:])
            except orjson.JSONDecodeError:
                data = line[5:].strip()
                self.chunks -= 1  # "[DONE]" or a blank data line: no event
                if data == b"[DONE]":
                    self.done = True
                    break
                if data:
                    raise ProviderError("Pollinations sent a malformed stream chunk") from None
                continue
            self._chunk(chunk)
            if self.done:
                break
        return out

    def _batch(self, piece: bytes) -> bool:
        """The usual read: whole ``data: {...}`` events, each text only (and a last
        ``data: [DONE]``), decoded with one msgspec call. The read, less its first
        ``data: ``, is made one JSON array by replacing each ``\\n\\ndata: `` between
        events with a comma: a JSON text holds no raw newline, so that sequence is only
        ever the boundary of two events. Splitting into lines, a decode call per line and
        the checks of each line are gone (a 22-chunk read: ~200k -> ~130k instructions).
        Anything else (a comment, ``id:``, a chunk with more than text, a malformed one)
        does not decode, and False sends the read to the line-by-line reader, which
        gives the same events for it, or its error."""
        if piece.endswith(_DONE_TAIL):
            done, end = True, -len(_DONE_TAIL)
        elif piece == _DONE_ALONE:
            self.done = True
            return True
        else:
            done, end = False, -2
        decode, shape_error = _typed_read()
        try:
            # One copy of the events (less the first "data: " and the last blank line),
            # one for the commas and one for the brackets.
            read = decode(b"".join((b"[", piece[6:end].replace(_BETWEEN, b","), b"]")))
        except shape_error:
            self.batched = False
            return False
        self.chunks += len(read)
        self.done = done
        put = self.put  # out.append: the legacy host never comes here
        new, set_text = _new, _set_text
        for chunk in read:
            # Nothing but text, a model name, a finish reason and usage (the typed decoder
            # refuses any more): what the line-by-line reader makes of each (the same
            # lines as in read(), kept inline in both: change both).
            if not self.model_seen and chunk.model:
                self.model_seen = True
                put(_model_used(chunk.model))
            if choices := chunk.choices:
                choice = choices[0]
                if (delta := choice.delta) is not None and (content := delta.content):
                    if self.lead is not None:
                        content = self._lead(content)
                    if content:
                        put(event := new(TextDelta))
                        set_text(event, content)
                if reason := choice.finish_reason:
                    self.reason = _FINISH.get(reason, "stop")
            if chunk.usage is not None and (usage := _usage(chunk.usage)):
                self.saw_usage = True
                put(usage)
        return True

    def _chunk(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        if chunk.get("error"):
            _raise_if_error(chunk)
        put = self.put
        if not self.model_seen and (model := chunk.get("model")):
            self.model_seen = True
            put(_model_used(str(model)))
        if chunk.get("citations"):
            if self.cited is None:
                self.cited = set()
            for citation in _citations(chunk, self.cited):
                put(citation)
        choices = chunk.get("choices")
        if choices and isinstance(choices, list) and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta")
            if not isinstance(delta, dict):  # a shape we do not know: no delta to read
                delta = None
            # Most chunks carry only text: the lookups for everything else are skipped.
            if delta and len(delta) == 1 and not self.legacy and self.lead is None:
                content = delta.get("content")
                if content and isinstance(content, str):
                    put(TextDelta(content))
                    delta = None
            if delta:
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if reasoning and isinstance(reasoning, str):
                    put(ReasoningDelta(reasoning))
                content = delta.get("content")
                if content and isinstance(content, str) and self.lead is not None:
                    content = self._lead(content)
                if content and isinstance(content, str):
                    if self.legacy:
                        self._text(content)
                        if self.done:
                            return
                    else:
                        put(TextDelta(content))
                if calls := delta.get("tool_calls"):
                    self.saw_tools = True
                    for i, call in enumerate(calls):
                        function = call.get("function") or {}
                        put(
                            ToolCallDelta(
                                index=int(call.get("index", i)),
                                id=call.get("id"),
                                name=function.get("name"),
                                arguments=function.get("arguments") or "",
                            )
                        )
            if reason := choice.get("finish_reason"):
                self.reason = _FINISH.get(reason, "stop")
        if (usage := chunk.get("usage")) is not None and (usage := _usage(usage)):
            self.saw_usage = True
            put(usage)

    def completion(self, raw: bytes, audio_format: str) -> list[ChatEvent]:
        """The events of a JSON completion. The usual one, text only from the gateway host,
        is decoded typed and its events put in one pass (what ``whole`` would make of
        ``read_completion``'s) and ended with its Finish (``ended``: ``close`` adds
        nothing); any other (reasoning, tool calls, audio, citations, an error, another
        shape, the legacy host's checks) takes the full walk."""
        if not self.legacy:
            decode, shape_error = _typed_completion()
            try:
                done = decode(raw)
            except shape_error:
                pass
            else:
                if done.choices:
                    return self._text_completion(done)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError("Pollinations sent malformed JSON") from None
        return self.whole(read_completion(data, audio_format))

    def _text_completion(self, done: TextCompletion) -> list[ChatEvent]:
        """The whole answer, ended: what ``close`` would add is added here (a text answer
        from the gateway host holds nothing back and has no tool calls), so the usual
        JSON answer is one pass and one list."""
        # What _new_batch, _model_used and _lead do, inline: each call was a frame of
        # the answer's only pass. Nothing here is the legacy host's (no _hold).
        self.out = out = []
        self.put = put = out.append
        if (carry := self.carry) is not None:
            put(carry)
            self.carry = None
        if (model := done.model) and not self.model_seen:
            put(_MODELS.get(model) or _model_used(model))
        choice = done.choices[0]
        if (message := choice.message) is not None and (text := message.content):
            if self.lead is not None:
                if self.lead == "" and not text[0].isspace():  # the usual: nothing to trim
                    self.lead = None
                else:
                    text = self._lead(text)
            if text:
                put(TextDelta(text))
        if usage := _usage(done.usage):
            self.saw_usage = True
            put(usage)
        if reason := choice.finish_reason:
            self.reason = reason = _FINISH.get(reason, "stop")
        if self.header_usage is not None and not self.saw_usage:
            put(self.header_usage)
        put(_FINISHED[reason or "stop"])
        self.ended = True
        return out

    def whole(self, events: list[ChatEvent]) -> list[ChatEvent]:
        """The events of an answer read in one piece (JSON, plain text, audio)."""
        out = self._new_batch()
        for event in events:
            if self.done:
                break
            if isinstance(event, Finish):
                self.reason = event.reason
            elif isinstance(event, Usage):
                self.saw_usage = True
                self.put(event)
            elif isinstance(event, ModelUsed) and self.model_seen:
                continue  # named by the headers already
            elif isinstance(event, TextDelta) and (self.legacy or self.lead is not None):
                text = self._lead(event.text) if self.lead is not None else event.text
                if text and self.legacy:
                    self._text(text)
                elif text:
                    self.put(TextDelta(text))
            else:
                if isinstance(event, ToolCallDelta):
                    self.saw_tools = True
                self.put(event)
        return out

    def close(self, *, streamed: bool = False) -> list[ChatEvent]:
        """The last events: what was held back, and the Finish (none once ``ended``)."""
        out = self._new_batch()
        if self.ended:
            return out
        lines = self.lines
        if lines is not None and lines.partial and not self.done:  # no final newline
            line = lines.rest().strip()
            data = line[5:].strip() if line.startswith(b"data:") else b""
            if data and data != b"[DONE]":
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise ProviderError("Pollinations sent a malformed stream chunk") from None
                self.chunks += 1
                self._chunk(chunk)
        if streamed and not self.chunks:
            raise ProviderError(
                "Pollinations answered an event stream with no events (no data chunk before "
                "its end)",
                code="upstream_empty_stream",
            )
        if self.stop is not _NO_STOPS and not self.cut and (tail := self.stop.flush()):
            budget = self.budget
            if budget is not None and self.emitted + len(tail) > budget:
                tail, self.reason = tail[: budget - self.emitted], "length"
            if tail:
                self._hold(TextDelta(tail))
        if self.held is not None:
            if errors.is_notice(self.held_text):
                raise errors.notice_error(self.held_text)
            out += self.held
            self.held = None
        if self.header_usage is not None and not self.saw_usage:
            out.append(self.header_usage)
        reason = self.reason
        if self.saw_tools and reason in (None, "stop"):
            reason = "tool_calls"
        out.append(_FINISHED.get(reason or "stop") or Finish(reason))  # type: ignore[arg-type]
        return out

    def _lead(self, text: str) -> str:
        """``text`` without the blank lines that open the answer ("" while the answer is
        still only whitespace); the indentation of the first line with text stays."""
        if not self.lead and text and not text[0].isspace():  # the usual: nothing to trim
            self.lead = None
            return text
        lead = self.lead + text  # type: ignore[operator]
        body = lead.lstrip()
        if not body:
            self.lead = lead
            return ""
        self.lead = None
        return lead[lead.rfind("\n", 0, len(lead) - len(body)) + 1 :]

    def _text(self, text: str) -> None:
        """Legacy host: answer text through the stop sequences and the max_tokens budget."""
        text, stopped = self.stop.feed(text)
        budget = self.budget
        limited = budget is not None and self.emitted + len(text) > budget
        if limited:
            text = text[: budget - self.emitted]  # type: ignore[operator]
        self.emitted += len(text)
        if text:
            self._hold(TextDelta(text))
        if stopped or limited:
            self.reason = "length" if limited else "stop"
            self.done = self.cut = True

    def _hold(self, event: ChatEvent) -> None:
        """Legacy host: pass ``event`` on, or hold it (and everything after it) while the
        answer may still be the deprecation notice."""
        held = self.held
        if held is None:
            self.out.append(event)
            return
        held.append(event)
        if isinstance(event, TextDelta):
            self.held_text += event.text
            verdict = errors.notice_verdict(self.held_text)
            if verdict is None:
                return
        elif isinstance(event, ModelUsed):
            return
        else:  # anything but text: the notice would have come first
            verdict = errors.is_notice(self.held_text)
        if verdict:
            raise errors.notice_error(self.held_text)
        self.out += held
        self.held = None


@functools.lru_cache(maxsize=16)
def _route(host: str, key: str | None) -> tuple[URL, CIMultiDictProxy[str]]:
    """The chat URL, parsed, and the request headers (read-only: aiohttp copies them into
    each request's own) for a host and key: the same on almost every call."""
    url = URL(f"{host}/v1/chat/completions" if key else f"{host}/openai")
    headers = CIMultiDict({"Content-Type": "application/json", **auth_headers(key)})
    return url, CIMultiDictProxy(headers)


async def chat(request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[ChatItem]:
    cfg = settings()
    key = api_key(ctx, cfg)
    keyed = key is not None
    url, headers = _route(cfg.gen_url if keyed else cfg.text_url, key)
    body = build_body(request, keyed=keyed)
    answer = _Answer(request, keyed=keyed)
    # Keyed calls are limited per account upstream: no local slot to wait for. An
    # anonymous call holds its slot from before the request until after the release.
    slot = None if keyed else transport.anonymous_slot(ctx, cfg, "text", keyed=False)
    if slot is not None:
        await slot.__aenter__()
    try:
        # The request awaited here and released below, as transport.call does it, without
        # that object and its two coroutines: this is every chat request's path. watched:
        # the kernel's watchdog bounds the wait for the headers and every event after them
        # (G4F_TIMEOUT, then G4F_STREAM_TIMEOUT), so no socket timer is armed.
        try:
            resp = await ctx.http.request(
                "POST",
                url,
                timeout=transport.client_timeout(ctx.timeout, True),
                proxy=ctx.proxy,
                data=orjson.dumps(body),
                headers=headers,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise errors.for_exception(exc, "chat") from exc
        if resp.status >= 300:
            raise await transport.refusal(ctx, resp, "chat", keyed=keyed)
        # The answer's last events (the whole answer, or the read that ended the stream)
        # go out with close()'s in one batch (one write to the client, not two), after the
        # connection is back.
        last: list[ChatEvent] | None = None
        try:
            answer.upstream_headers(resp.raw_headers, ctx)
            # One list per network read: the gateway writes it to the client in one piece.
            if resp.content_type == "text/event-stream":
                feed, readany = answer.feed, resp.content.readany
                # readany() itself, not iter_any(): its __anext__ is one more coroutine.
                while piece := await readany():
                    events = feed(piece)
                    if answer.done:
                        last = events
                        break
                    if events:
                        yield events
                        answer.model_seen = True  # one model per stream: the first one named
                streamed = True
            elif (content := resp.content).is_eof() and resp.content_type == "application/json":
                # The usual whole answer: it came with its headers, and is decoded here,
                # without _read_whole's coroutine (nor read()'s loop of awaits).
                last = answer.completion(content.read_nowait(), _audio_format(body))
                streamed = False
            else:
                last = await _read_whole(resp, body, answer)
                streamed = False
        except G4FError:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:  # while reading the answer
            raise errors.for_exception(exc, "chat") from exc
        finally:  # what leaving aiohttp's `async with` does: the connection goes back
            resp.release()
    finally:
        if slot is not None:
            await slot.__aexit__(None, None, None)
    if answer.ended:  # a text completion, finished in the same pass: nothing to close
        yield last  # type: ignore[misc]
        return
    try:
        end = answer.close(streamed=streamed)
    except Exception:
        if last:  # what was read before the failure still goes first, as it did
            yield last
        raise
    if last:
        last += end
        yield last
    else:
        yield end
