"""A response's frame: the fields of the ``response`` object that echo the request
(status ``in_progress``, no output, no usage), as a dict (``response_frame``) and
encoded (``EncodedFrame``), and the final object of a one-message answer spliced from
the encoded frame.

A streamed or non-streamed answer that is one text message (most) never needs the dict:
``Frame`` builds it only when something reads it (a stored response, the WebSocket
mode, a failure, any other answer), and encodes a plain request's frame (one that sets
nothing the frame echoes but ``instructions`` and ``store``) from pieces derived once
from ``response_frame`` itself, so the two cannot disagree.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from g4f_server.pipeline.transcript import Transcript
from g4f_server.protocols.named import named_fields
from g4f_server.protocols.responses.request import PLAIN_FIELDS, ResponsesRequest
from g4f_server.protocols.responses.tools import echoed_tools
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps

# A response's fields in the order the API lists them, each the value a request that
# sets nothing gets. ``response_frame`` copies it (a copy of a dict this size costs a
# fraction of building one) and sets what the request and the answer decide.
_FRAME: dict[str, Any] = {
    "id": "",
    "object": "response",
    "created_at": 0,
    "completed_at": None,
    "status": "in_progress",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "model": "",
    "provider": "",
    "output": None,  # a new list per response
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": None,  # a new dict per response
    "store": True,
    "background": False,
    "service_tier": "default",
    "temperature": 1.0,
    "top_p": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "top_logprobs": 0,
    "text": None,  # a new dict per response
    "tool_choice": "auto",
    "tools": None,  # a new list per response
    "truncation": "disabled",
    "usage": None,
    "user": None,
    "safety_identifier": None,
    "prompt_cache_key": None,
    "prompt_cache_retention": None,
    "metadata": None,  # a new dict per response
}


def response_frame(
    request: ResponsesRequest,
    response_id: str,
    model: str,
    provider: str,
    created: int | None = None,
) -> dict[str, Any]:
    """The fields of a response that echo the request, status ``in_progress``: every
    field the API reference and the Open Responses specification require, the request's
    value where it sent one, else the API's default."""
    # Read from the model's __dict__: a pydantic model defines __getattr__, which makes
    # each attribute read take the slow path.
    sent = request.__dict__
    frame = dict(_FRAME)
    frame["id"] = response_id
    frame["created_at"] = int(time.time()) if created is None else created
    frame["model"] = model
    frame["provider"] = provider
    frame["output"] = []
    if (reasoning := sent["reasoning"]) is None:  # most requests: the defaults, no lookups
        frame["reasoning"] = {"effort": None, "summary": None}
    else:
        frame["reasoning"] = {
            "effort": reasoning.get("effort"),
            "summary": reasoning.get("summary"),
        }
    if (text := sent["text"]) is None:
        frame["text"] = {"format": {"type": "text"}, "verbosity": "medium"}
    else:
        frame["text"] = {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity", "medium"),
        }
    frame["tools"] = echoed_tools(tools) if (tools := sent["tools"]) else []
    frame["metadata"] = sent["metadata"] or {}
    frame["store"] = sent["store"]
    # The rest can differ from the template only where the request sent it (most send
    # none of these but ``instructions``).
    given = request.model_fields_set
    if not given.isdisjoint(_ECHOED):
        for name in _ECHOED.intersection(given):
            if (value := sent[name]) is not None:
                frame[name] = value
    if sent["parallel_tool_calls"] is False:
        frame["parallel_tool_calls"] = False
    if not given.isdisjoint(_OR_DEFAULT):
        for name in _OR_DEFAULT.intersection(given):
            if value := sent[name]:  # a falsy value means the default, as the API reads it
                frame[name] = value
    return frame


# Echoed as sent when not null; echoed when truthy (else the API's default).
_ECHOED = frozenset(
    (
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "previous_response_id",
        "temperature",
        "top_p",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    )
)
_OR_DEFAULT = frozenset(
    (
        "service_tier",
        "presence_penalty",
        "frequency_penalty",
        "top_logprobs",
        "tool_choice",
        "truncation",
    )
)


class Frame:
    """One response's frame: its dict built on first read (``dict``), its model kept
    current as the answer names one (``set_model``), its encoding (``encoded``) from
    pieces for a plain request. ``created`` is fixed here, so the dict built late and the
    bytes written early say the same second."""

    __slots__ = ("_dict", "created", "id", "model", "provider", "request")

    def __init__(
        self, request: ResponsesRequest, response_id: str, model: str, provider: str
    ) -> None:
        self.request = request
        self.id = response_id
        self.model = model
        self.provider = provider
        self.created = int(time.time())
        self._dict: dict[str, Any] | None = None

    def dict(self) -> dict[str, Any]:
        """``response_frame`` of the request (built once, then kept current)."""
        if self._dict is None:
            self._dict = response_frame(
                self.request, self.id, self.model, self.provider, self.created
            )
        return self._dict

    def set_model(self, model: str) -> None:
        self.model = model
        if self._dict is not None:
            self._dict["model"] = model

    def encoded(self) -> EncodedFrame:
        """The frame encoded, as it reads now: a plain request's (one that sets nothing
        the frame echoes but ``instructions`` and ``store``: ``is_plain``, inlined) from
        the pieces around its values (id, created, instructions, model, provider, store),
        any other from its dict."""
        request = self.request
        if (
            self._dict is not None
            or (pieces := _plain_pieces()) is None
            or not PLAIN_FIELDS.issuperset(request.__pydantic_fields_set__)
        ):
            return EncodedFrame.of(dumps(self.dict()))
        h0, h1, h2, m0, m1, m3, ends = pieces
        sent = request.__dict__
        # Built as ``EncodedFrame.__init__`` would, without its frame: rest, tail and
        # closing are the plain frame's constants (by ``store``).
        encoded = _new(EncodedFrame)
        encoded.head = b"".join((h0, dumps(self.id), h1, b"%d" % self.created, h2))
        # The same few instructions, models and providers answer most requests: the
        # middle kept by them (bounded; short instructions only, so that it stays small).
        key = (instructions := sent["instructions"], self.model, self.provider)
        if (middle := _MIDDLES.get(key)) is None:
            middle = b"".join((m0, dumps(instructions), m1, named_fields(*key[1:]), m3))
            if instructions is None or len(instructions) <= MIDDLE_TEXT_MAX:
                if len(_MIDDLES) >= MIDDLES_MAX:
                    _MIDDLES.clear()
                _MIDDLES[key] = middle
        encoded.middle = middle
        encoded.rest, encoded.tail, encoded.closing = ends[sent["store"] is True]
        return encoded


# The frame's fields that its final object changes, as the frame encodes them, and the
# bytes around them in an encoded frame: ``EncodedFrame`` holds the frame cut there.
STATUS_OPEN = b'"completed_at":null,"status":"in_progress","error":null,"incomplete_details":null'
_OUTPUT_EMPTY = b',"output":[]'
_OUTPUT_OPEN = _OUTPUT_EMPTY + b',"parallel_tool_calls":'
_USAGE_NULL = b',"usage":null'
_USAGE_OPEN = _USAGE_NULL + b',"user":'
_USAGE = (
    b',"usage":{"input_tokens":%d,"input_tokens_details":{"cached_tokens":0},'
    b'"output_tokens":%d,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":%d'
)
_ESTIMATED = b',"estimated":true}'
# The status fields of a final object after ``completed_at``'s value, by finish reason.
_COMPLETED = b',"status":"completed","error":null,"incomplete_details":null'
_INCOMPLETE = {
    "length": b',"status":"incomplete","error":null,'
    b'"incomplete_details":{"reason":"max_output_tokens"}',
    "content_filter": b',"status":"incomplete","error":null,'
    b'"incomplete_details":{"reason":"content_filter"}',
}
_new = object.__new__


class EncodedFrame:
    """A frame encoded, cut around the fields its final object changes: ``head`` up to
    ``completed_at``, ``middle`` from after ``incomplete_details`` up to ``output``,
    ``rest`` from after ``output`` up to ``usage``, ``tail`` after ``usage`` (without
    the closing brace); ``closing`` is the in-progress frame's bytes after ``middle``."""

    __slots__ = ("closing", "head", "middle", "rest", "tail")

    def __init__(self, head: bytes, middle: bytes, rest: bytes, tail: bytes) -> None:
        self.head, self.middle, self.rest, self.tail = head, middle, rest, tail
        self.closing = b"".join((_OUTPUT_EMPTY, rest, _USAGE_NULL, tail, b"}"))

    @classmethod
    def of(cls, encoded: bytes) -> EncodedFrame:
        """Cut ``dumps(frame)``. Each field is found by its key and the value the frame
        gives it: a JSON string holds no unescaped quote, so these bytes occur in no
        string; every field before ``output`` is a string, a number or null (the first
        match is the field) and every field after ``usage`` a string or ``metadata``'s
        strings (the last match is)."""
        status = encoded.find(STATUS_OPEN)
        output = encoded.find(_OUTPUT_OPEN, status)
        usage = encoded.rfind(_USAGE_OPEN)
        if not 0 < status < output < usage:  # not a frame's encoding: a bug, not input
            raise ValueError("not an encoded response frame")
        return cls(
            encoded[:status],
            encoded[status + len(STATUS_OPEN) : output],
            encoded[output + len(_OUTPUT_EMPTY) : usage],
            encoded[usage + len(_USAGE_NULL) : -1],
        )

    def pieces(self) -> tuple[bytes, ...]:
        """The frame's bytes, in pieces to join."""
        return self.head, STATUS_OPEN, self.middle, self.closing

    def final(
        self,
        message: tuple[bytes, ...],
        text: bytes,
        transcript: Transcript,
        chat: ChatRequest,
    ) -> tuple[bytes, tuple[bytes, ...]]:
        """``dumps(finished(frame, [item], transcript, chat))`` for an answer that is one
        message item (``message`` encoded, in pieces; ``text`` its text as a JSON string),
        the model it names being the frame's, in pieces to join (the stream's last events
        join them with the message's closing: one copy); with its kind (``completed`` or
        ``incomplete``)."""
        # ``finish_reason`` and ``token_counts`` without their frames (an answer of one
        # message has no tool call, which is all the property adds).
        status = _INCOMPLETE.get(transcript.finish, _COMPLETED)  # type: ignore[arg-type]
        if (usage := transcript.usage) is not None:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
            estimated = usage.estimated
        else:
            prompt, completion, estimated = transcript.token_counts(chat)
        return (b"completed" if status is _COMPLETED else b"incomplete"), (
            self.head, b'"completed_at":%d' % int(time.time()), status, self.middle,
            b',"output":[', *message, b"]", self.rest,
            _USAGE % (prompt, completion, prompt + completion),
            _ESTIMATED if estimated else b"}",
            self.tail, b',"output_text":', text, b"}",
        )  # fmt: skip


_MIDDLES: dict[tuple[str | None, str, str], bytes] = {}
MIDDLES_MAX, MIDDLE_TEXT_MAX = 256, 1024

# Values no real frame holds, to find where a plain frame's values go.
_PROBE_ID, _PROBE_CREATED = "\x00id\x01", 4_102_444_800_123
_PROBE_INSTRUCTIONS, _PROBE_MODEL, _PROBE_PROVIDER = "\x00i\x01", "\x00m\x01", "\x00p\x01"


@functools.cache
def _plain_pieces() -> tuple[Any, ...] | None:
    """The constant bytes of a plain request's encoded frame, cut around its values:
    derived from ``response_frame`` of a probe request, so they are its bytes; None
    (encode each frame whole) should a value not be found exactly once. The model and
    provider go in as ``named_fields`` encodes them; rest, tail and closing are
    constants, one set per value of ``store``."""
    ends = []
    for store in (False, True):
        probe = ResponsesRequest.model_validate(
            {"model": "m", "input": "x", "instructions": _PROBE_INSTRUCTIONS, "store": store}
        )
        frame = response_frame(probe, _PROBE_ID, _PROBE_MODEL, _PROBE_PROVIDER, _PROBE_CREATED)
        encoded = dumps(frame)
        cut = EncodedFrame.of(encoded)
        ends.append((cut.rest, cut.tail, cut.closing))
    head = _split(encoded, cut.head, dumps(_PROBE_ID), b"%d" % _PROBE_CREATED)
    named = named_fields(_PROBE_MODEL, _PROBE_PROVIDER)
    middle = _split(encoded, cut.middle, dumps(_PROBE_INSTRUCTIONS), named)
    markers = (dumps(_PROBE_ID), dumps(_PROBE_INSTRUCTIONS), named)
    if head is None or middle is None or any(m in e for m in markers for e in ends[1]):
        return None
    return (*head, *middle, tuple(ends))


def _split(whole: bytes, part: bytes, *markers: bytes) -> list[bytes] | None:
    """``part`` of ``whole`` cut at each marker in turn; None unless each is in ``whole``
    exactly once."""
    pieces = []
    for marker in markers:
        if whole.count(marker) != 1 or marker not in part:
            return None
        before, part = part.split(marker)
        pieces.append(before)
    pieces.append(part)
    return pieces
