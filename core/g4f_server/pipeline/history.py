"""Where provider state for a conversation, and stored Responses API objects, are kept
between requests.

``ConversationStore`` and ``ResponseStore`` (``storage/interfaces.py``) are the seams:
the app's default for both is the SQLite store in the data folder (``storage/sqlite.py``,
one object implementing both); Redis implements the same few methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from g4f_server.pipeline.transcript import Transcript
    from g4f_server.requests import ChatRequest
    from g4f_server.storage.interfaces import ConversationStore


# History (a conversation's store key comes from ``scope.conversation_key``): the kernel
# stores the messages of each turn (the request as answered, plus the assistant's
# reply) under the reserved provider slot ``HISTORY``, so any backend that
# implements the three methods stores it too. When a client continues a conversation
# without resending it (no assistant message in ``messages``), ``with_history`` puts the
# stored turns in front; a client that sends the full history is left alone. Providers
# with upstream state (``ctx.conversation``) get the same full history that ordinary
# OpenAI clients send every time, and only forward the new turn.

HISTORY = "*history"  # "*" cannot appear in a provider name used in URLs
MAX_HISTORY_MESSAGES = 200
MAX_HISTORY_BYTES = 2 * 1024 * 1024
_SYSTEM_ROLES = ("system", "developer")


async def with_history(store: ConversationStore, key: str, chat: ChatRequest) -> ChatRequest:
    """``chat`` with the stored turns of conversation ``key`` in front of its messages."""
    if any(m.role == "assistant" for m in chat.messages):
        return chat  # the client keeps the history itself
    stored = await store.load(key, HISTORY)
    if not stored or not stored.get("messages"):
        return chat
    from g4f_server.requests import Message  # loaded by the chat route already

    old = [Message.model_validate(m) for m in stored["messages"]]
    new_system = [m for m in chat.messages if m.role in _SYSTEM_ROLES]
    system = new_system or [m for m in old if m.role in _SYSTEM_ROLES]
    messages = [
        *system,
        *(m for m in old if m.role not in _SYSTEM_ROLES),
        *(m for m in chat.messages if m.role not in _SYSTEM_ROLES),
    ]
    return chat.model_copy(update={"messages": messages})


async def remember_turn(
    store: ConversationStore, key: str, chat: ChatRequest, transcript: Transcript
) -> None:
    """Store the turn just answered: ``chat.messages`` (as returned by ``with_history``)
    plus the assistant's reply, trimmed to the history bounds (oldest turns go first)."""
    messages = [m.model_dump(mode="json", exclude_none=True) for m in chat.messages]
    messages.append(reply_message(transcript))
    await store.save(key, HISTORY, {"messages": trim_history(messages)})


def reply_message(transcript: Transcript) -> dict[str, Any]:
    """The assistant's answer as a chat message, for the next turn's history."""
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(transcript.text)}
    if transcript.tools:
        reply["tool_calls"] = transcript.tool_calls()
    return reply


def trim_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat message dicts within the history bounds: system messages kept, the oldest
    turns dropped first."""
    system = [m for m in messages if m["role"] in _SYSTEM_ROLES]
    rest = [m for m in messages if m["role"] not in _SYSTEM_ROLES]
    return system + _newest_that_fit(system, rest)


def _newest_that_fit(system: list[dict[str, Any]], rest: list[dict[str, Any]]) -> list[dict]:
    """The longest tail of ``rest`` that fits the history bounds beside ``system``, not
    starting with an orphaned tool result or reply. One pass from the newest message
    (each serialized once): linear in the history's length, whatever its size."""
    room_messages = MAX_HISTORY_MESSAGES - len(system)
    room_bytes = MAX_HISTORY_BYTES - len(orjson.dumps(system)) - len(rest)  # commas
    start = len(rest)
    while start > 0 and len(rest) - start < room_messages:
        size = len(orjson.dumps(rest[start - 1]))
        if size > room_bytes:
            break
        room_bytes -= size
        start -= 1
    while start < len(rest) and rest[start]["role"] in ("tool", "assistant"):
        start += 1
    return rest[start:]
