"""Where provider state for a conversation is kept between requests.

``ConversationStore`` is the seam: the embedded default lives in this process; a shared
backend (SQLite, Redis) implements the same three methods.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol


class ConversationStore(Protocol):
    async def load(self, conversation_id: str, provider: str) -> dict[str, Any] | None: ...

    async def save(self, conversation_id: str, provider: str, state: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class MemoryConversationStore:
    """Bounded in-process store: least recently used entries go first, entries expire."""

    def __init__(self, max_entries: int = 10_000, ttl: float = 24 * 3600) -> None:
        self._items: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        self.max_entries = max_entries
        self.ttl = ttl

    async def load(self, conversation_id: str, provider: str) -> dict[str, Any] | None:
        key = (conversation_id, provider.lower())
        item = self._items.get(key)
        if item is None:
            return None
        saved_at, state = item
        if time.monotonic() - saved_at > self.ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return state

    async def save(self, conversation_id: str, provider: str, state: dict[str, Any]) -> None:
        key = (conversation_id, provider.lower())
        self._items[key] = (time.monotonic(), state)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    async def close(self) -> None:
        self._items.clear()
