"""What text goes into a ``send`` frame.

Copilot keeps a conversation's history server-side and takes one user text per turn.
Continuing a known conversation, we send only the trailing user message(s). Starting a
new one, the request must stand on its own, so system instructions and earlier turns are
folded into that one text, newest turns kept when it gets too long.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from g4f_server.errors import InvalidRequestError

if TYPE_CHECKING:
    from g4f_server.schemas.chat import Message

# Copilot rejects very long inputs; keep the folded history well under its limit.
MAX_PROMPT_CHARS = 10_000

_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool result", "function": "Tool"}


def split_trailing_user(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """(earlier messages, the consecutive user messages at the end)."""
    i = len(messages)
    while i > 0 and messages[i - 1].role == "user":
        i -= 1
    trailing = messages[i:]
    if not trailing:
        raise InvalidRequestError(
            "Copilot answers a user message: the last message must have role 'user'",
            param="messages",
        )
    return messages[:i], trailing


def trailing_text(trailing: list[Message]) -> str:
    return "\n".join(t for t in (m.text() for m in trailing) if t)


def trailing_images(trailing: list[Message]) -> list[str]:
    return [url for m in trailing for url in m.image_urls()]


def build(messages: list[Message], *, continuing: bool) -> str:
    earlier, trailing = split_trailing_user(messages)
    question = trailing_text(trailing)
    if continuing:
        return question
    system = "\n".join(m.text() for m in earlier if m.role in ("system", "developer"))
    turns = [_render(m) for m in earlier if m.role not in ("system", "developer")]
    turns = [t for t in turns if t]
    if not system and not turns:
        return question
    budget = MAX_PROMPT_CHARS - len(system) - len(question)
    kept: list[str] = []
    for turn in reversed(turns):  # newest first: older turns are the ones to drop
        budget -= len(turn) + 1
        if budget < 0:
            break
        kept.append(turn)
    kept.reverse()
    parts = []
    if system:
        parts.append(f"Instructions:\n{system}")
    if kept:
        parts.append("Conversation so far:\n" + "\n".join(kept))
    if kept or system:
        parts.append(f"Reply to this new message:\n{question}")
    return "\n\n".join(parts)


def _render(message: Message) -> str:
    text = message.text()
    if message.image_urls():
        text = (text + " [image]").strip()
    if message.tool_calls:
        calls = ", ".join(f"{c.function.name}({c.function.arguments})" for c in message.tool_calls)
        text = (text + f" [called {calls}]").strip()
    if not text:
        return ""
    return f"{_LABELS.get(message.role, message.role)}: {text}"
