"""Legacy OpenAI completions: the internal event stream rendered as ``text_completion``
objects, whole or as SSE chunks ending with ``data: [DONE]``. Only the answer's text
travels (reasoning and tool calls have no place in this protocol)."""

from __future__ import annotations

import random
import time
from typing import Any

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.pipeline.transcript import Transcript, media_markdown
from g4f_server.protocols import sse
from g4f_server.requests import ChatRequest
from g4f_server.web.jsonio import dumps


def new_completion_id() -> str:
    return f"cmpl-{random.getrandbits(96):024x}"  # unique, not secret


def _finish_reason(transcript: Transcript) -> str:
    reason = transcript.finish_reason
    return reason if reason in ("length", "content_filter") else "stop"


def completion_body(
    transcript: Transcript,
    chat: ChatRequest,
    *,
    completion_id: str,
    model: str,
    provider: str,
    echo: str = "",
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": transcript.model_used or model,
        "provider": provider,
        "choices": [
            {
                "text": echo + "".join(transcript.text),
                "index": 0,
                "logprobs": None,
                "finish_reason": _finish_reason(transcript),
            }
        ],
        "usage": transcript.usage_dict(chat),
    }


class CompletionChunks:
    """Turns events into text_completion SSE chunks (``streaming.StreamRenderer``); the
    constant part of a chunk is encoded once and the text spliced in."""

    _TAIL = b',"index":0,"logprobs":null,"finish_reason":null}]}\n\n'

    def __init__(
        self,
        completion_id: str,
        model: str,
        provider: str,
        chat: ChatRequest,
        *,
        echo: str = "",
        usage: bool = False,
    ) -> None:
        self.frame = {
            "id": completion_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "provider": provider,
        }
        self.chat, self.echo, self.wants_usage = chat, echo, usage
        self._set_head()

    def _set_head(self) -> None:
        self._head = b"data: " + dumps(self.frame)[:-1] + b',"choices":[{"text":'

    def _chunk(self, text: str) -> bytes:
        return self._head + dumps(text) + self._TAIL

    def start(self) -> bytes:
        return self._chunk(self.echo) if self.echo else b""

    def render(self, event: ev.ChatEvent) -> bytes | None:
        if isinstance(event, ev.TextDelta):
            return self._chunk(event.text) if event.text else None
        if isinstance(event, ev.Media):
            return self._chunk(media_markdown(event))
        if isinstance(event, ev.ModelUsed):
            self.frame["model"] = event.name
            self._set_head()
        return None

    def end(self, transcript: Transcript) -> bytes:
        last = {
            **self.frame,
            "choices": [
                {
                    "text": "",
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": _finish_reason(transcript),
                }
            ],
        }
        out = sse.event(last)
        if self.wants_usage:
            out += sse.event(
                {**self.frame, "choices": [], "usage": transcript.usage_dict(self.chat)}
            )
        return out + sse.DONE

    def failure(self, error: errors.G4FError) -> bytes:
        return sse.event(error.to_dict()) + sse.DONE
