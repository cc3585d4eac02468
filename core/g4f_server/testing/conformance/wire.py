"""One request per wire protocol, made with plain aiohttp (no SDK needed), and what a
well-formed answer of each looks like. Each ``check_*`` returns the answer's text, or
raises ``Malformed`` saying what is wrong."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from g4f_server.mediatypes import sniff
from g4f_server.testing.media import wav_bytes

PROMPT = "Say hello in five words."
FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


class Malformed(AssertionError):
    pass


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # the JSON body, the raw bytes, or the stream's [(event, data)] pairs

    def error_code(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or "")
        return ""

    def error_type(self) -> str:
        """The error's ``type``: the gateway's error class family (a plugin may give an
        error a ``code`` of its own, never a type)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("type") or "") if isinstance(error, dict) else ""


def expect(condition: Any, what: str) -> None:
    if not condition:
        raise Malformed(what)


async def post(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], *, stream: bool = False
) -> Answer:
    async with http.post(url, json=body) as resp:
        headers = dict(resp.headers)
        if stream and resp.status == 200:
            return Answer(resp.status, headers, await read_events(resp))
        raw = await resp.read()
    try:
        return Answer(resp.status, headers, json.loads(raw))
    except ValueError:
        return Answer(resp.status, headers, raw)


async def read_events(resp: aiohttp.ClientResponse) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a server-sent event stream; data parsed as JSON where
    it is JSON (``[DONE]`` stays a string)."""
    events: list[tuple[str, Any]] = []
    event = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
            try:
                events.append((event, json.loads(data)))
            except ValueError:
                events.append((event, data))
        elif not line:
            event = ""
    return events


def _ok(answer: Answer, what: str) -> None:
    expect(answer.status == 200, f"{what}: HTTP {answer.status} {str(answer.body)[:200]}")


def chat_completion(answer: Answer) -> str:
    _ok(answer, "chat completion")
    body = answer.body
    expect(
        isinstance(body, dict) and body.get("object") == "chat.completion", "not a chat.completion"
    )
    choice = (body.get("choices") or [None])[0]
    expect(isinstance(choice, dict), "no choices")
    message = choice.get("message") or {}
    expect(message.get("role") == "assistant", "message.role is not assistant")
    text = message.get("content") or ""
    expect(text or message.get("tool_calls"), "empty message")
    expect(
        choice.get("finish_reason") in FINISH_REASONS,
        f"finish_reason {choice.get('finish_reason')!r}",
    )
    expect(isinstance(body.get("usage"), dict), "no usage")
    return text


def chat_stream(answer: Answer) -> str:
    _ok(answer, "chat completion stream")
    events = answer.body
    expect(events and events[-1][1] == "[DONE]", "the stream does not end with [DONE]")
    chunks = [data for _, data in events[:-1]]
    expect(all(isinstance(c, dict) for c in chunks), "a data line is not JSON")
    errors = [c["error"] for c in chunks if "error" in c]
    expect(not errors, f"error in the stream: {errors[:1]}")
    expect(
        all(c.get("object") == "chat.completion.chunk" for c in chunks), "not chat.completion.chunk"
    )
    text = "".join(
        (choice.get("delta") or {}).get("content") or ""
        for c in chunks
        for choice in c.get("choices") or []
    )
    reasons = [ch.get("finish_reason") for c in chunks for ch in c.get("choices") or []]
    expect(text, "no text in the stream")
    expect(any(r in FINISH_REASONS for r in reasons), "no finish_reason")
    return text


def stream_error(answer: Answer) -> Any:
    """The error a chat completion stream ended with (None: it ended cleanly)."""
    if answer.status != 200:
        return answer.body
    for _, data in answer.body:
        if isinstance(data, dict) and "error" in data:
            return data["error"]
    return None


def _responses_text(body: dict[str, Any]) -> str:
    return "".join(
        part.get("text") or ""
        for item in body.get("output") or []
        if item.get("type") == "message"
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    )


def response(answer: Answer) -> str:
    _ok(answer, "response")
    body = answer.body
    expect(isinstance(body, dict) and body.get("object") == "response", "not a response")
    expect(body.get("status") == "completed", f"status {body.get('status')!r}")
    text = _responses_text(body)
    expect(text, "no output_text")
    return text


def response_stream(answer: Answer) -> str:
    _ok(answer, "response stream")
    types = [data.get("type") for _, data in answer.body if isinstance(data, dict)]
    expect(types[:1] == ["response.created"], f"first event {types[:1]}")
    expect(types[-1:] == ["response.completed"], f"last event {types[-1:]}")
    deltas = [
        data.get("delta") or ""
        for _, data in answer.body
        if isinstance(data, dict) and data.get("type") == "response.output_text.delta"
    ]
    expect("".join(deltas), "no response.output_text.delta")
    final = answer.body[-1][1].get("response") or {}
    expect(_responses_text(final) == "".join(deltas), "the deltas differ from the final text")
    return "".join(deltas)


def message(answer: Answer) -> str:
    _ok(answer, "message")
    body = answer.body
    expect(isinstance(body, dict) and body.get("type") == "message", "not a message")
    expect(body.get("role") == "assistant", "role is not assistant")
    text = "".join(
        b.get("text") or "" for b in body.get("content") or [] if b.get("type") == "text"
    )
    expect(text, "no text block")
    expect(body.get("stop_reason"), "no stop_reason")
    return text


def message_stream(answer: Answer) -> str:
    _ok(answer, "message stream")
    types = [data.get("type") for _, data in answer.body if isinstance(data, dict)]
    expect(types[:1] == ["message_start"], f"first event {types[:1]}")
    expect(types[-1:] == ["message_stop"], f"last event {types[-1:]}")
    expect("error" not in types, "an error event")
    text = "".join(
        (data.get("delta") or {}).get("text") or ""
        for _, data in answer.body
        if isinstance(data, dict) and data.get("type") == "content_block_delta"
    )
    expect(text, "no text_delta")
    return text


def completion(answer: Answer) -> str:
    _ok(answer, "completion")
    body = answer.body
    expect(
        isinstance(body, dict) and body.get("object") == "text_completion", "not a text_completion"
    )
    text = ((body.get("choices") or [{}])[0]).get("text") or ""
    expect(text, "empty text")
    return text


def completion_stream(answer: Answer) -> str:
    _ok(answer, "completion stream")
    expect(answer.body and answer.body[-1][1] == "[DONE]", "the stream does not end with [DONE]")
    chunks = [d for _, d in answer.body[:-1] if isinstance(d, dict)]
    expect(not [c for c in chunks if "error" in c], "error in the stream")
    text = "".join(ch.get("text") or "" for c in chunks for ch in c.get("choices") or [])
    expect(text, "no text in the stream")
    return text


def images(answer: Answer) -> str:
    _ok(answer, "images")
    data = answer.body.get("data") if isinstance(answer.body, dict) else None
    expect(data, "no data")
    raw = base64.b64decode(data[0].get("b64_json") or "")
    kind = sniff(raw)
    expect(kind and kind[0].startswith("image/"), "b64_json is not an image")
    return f"{kind[0] if kind else '?'}, {len(raw)} bytes"


def speech(answer: Answer) -> str:
    _ok(answer, "speech")
    raw = answer.body if isinstance(answer.body, bytes) else b""
    expect(raw, "no audio")
    kind = sniff(raw)
    content_type = answer.headers.get("Content-Type", "")
    expect(
        content_type.startswith("audio/") or (kind and kind[0].startswith("audio/")), "not audio"
    )
    return f"{content_type}, {len(raw)} bytes"


def transcription(answer: Answer) -> str:
    _ok(answer, "transcription")
    text = answer.body.get("text") if isinstance(answer.body, dict) else None
    expect(isinstance(text, str) and text.strip(), "no text")
    return text or ""


async def transcribe(http: aiohttp.ClientSession, url: str, model: str) -> Answer:
    form = aiohttp.FormData()
    form.add_field(
        "file", wav_bytes(0.5, tone_hz=440), filename="hello.wav", content_type="audio/wav"
    )
    form.add_field("model", model)
    async with http.post(url, data=form) as resp:
        raw = await resp.read()
        try:
            return Answer(resp.status, dict(resp.headers), json.loads(raw))
        except ValueError:
            return Answer(resp.status, dict(resp.headers), raw)
