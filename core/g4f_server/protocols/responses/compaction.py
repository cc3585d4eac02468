"""Compaction (``POST /v1/responses/compact``): a long conversation becomes its user
messages and one ``compaction`` item, which the next ``responses.create`` takes as input.

OpenAI's compaction item is encrypted and opaque. The gateway has no secret to encrypt
with and nothing to hide from the client that sent the conversation: its
``encrypted_content`` is a versioned, base64-encoded JSON of the summary the model wrote
(``g4f1.`` prefix), readable by anyone holding it. Given back as input, it becomes one
user message with that summary, where the compacted turns were.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from g4f_server import errors

_PREFIX = "g4f1."
# What the model is asked to write: our own wording, kept short (it is sent on every
# compaction) and aimed at a coding agent's continuation.
PROMPT = (
    "Summarise the conversation above as a checkpoint for whoever continues it: the task "
    "and its goal, what has been done (decisions, files, commands and their results), what "
    "is left to do, and any facts needed to go on. Write only the summary."
)
SUMMARY_HEADER = "Summary of the earlier conversation (compacted):"


def encode(summary: str) -> str:
    """The ``encrypted_content`` of a compaction item holding ``summary``."""
    data = json.dumps({"summary": summary}, ensure_ascii=False).encode()
    return _PREFIX + base64.urlsafe_b64encode(data).decode()


def decode(content: str) -> str:
    """The summary in a compaction item's ``encrypted_content`` (ValueError if not ours)."""
    if not content.startswith(_PREFIX):
        raise ValueError("not a g4f-server compaction")
    try:
        data = json.loads(base64.urlsafe_b64decode(content[len(_PREFIX) :]))
    except (binascii.Error, ValueError):
        raise ValueError("a damaged compaction") from None
    if not isinstance(data, dict) or not isinstance(data.get("summary"), str):
        raise ValueError("a damaged compaction")
    return data["summary"]


def summary_message(i: int, item: dict[str, Any]) -> dict[str, Any]:
    """A ``compaction`` input item as the chat message the provider reads."""
    content = item.get("encrypted_content")
    try:
        summary = decode(content) if isinstance(content, str) else None
    except ValueError:
        summary = None
    if summary is None:
        # E.g. an item OpenAI encrypted, replayed against the gateway: nothing to read.
        raise errors.InvalidRequestError(
            f"input item {i}: this compaction item was not made by this gateway "
            "(its encrypted_content cannot be read); compact the conversation again "
            "with POST /v1/responses/compact here",
            param=f"input.{i}.encrypted_content",
            code="invalid_compaction",
        )
    return {"role": "user", "content": f"{SUMMARY_HEADER}\n{summary}"}


def kept_items(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a compaction keeps of a conversation (chat messages), as the API documents its
    output: every user message, as an input message item. An earlier compaction's summary
    is not kept: the new summary was written from it."""
    kept: list[dict[str, Any]] = []
    for message in turns:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            if content.startswith(SUMMARY_HEADER):
                continue
            parts = [{"type": "input_text", "text": content}]
        else:
            parts = [_input_part(part) for part in content or []]
        # Items as the specification's Message: an id and a status too.
        kept.append(
            {
                "id": f"msg_{secrets.token_hex(12)}",
                "type": "message",
                "status": "completed",
                "role": "user",
                "content": parts,
            }
        )
    return kept


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    """A chat content part as the Responses input part it came from."""
    if part.get("type") == "image_url":
        image = part.get("image_url") or {}
        out = {"type": "input_image", "image_url": image.get("url")}
        if image.get("detail"):
            out["detail"] = image["detail"]
        return out
    return {"type": "input_text", "text": part.get("text", "")}
