"""The in-process backends of storage/interfaces.py that need no file: the response
cache's LRU. (The embedded rate limiter's counters live with the limits themselves,
``controls/limits.py``: its fast path checks a whole rule in one call.)"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class MemoryCache:
    """LRU over (expiry, bytes), bounded by the bytes it holds."""

    max_bytes: int
    clock: Any = time.monotonic
    used: int = 0
    _items: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self.clock():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[1]

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        size = len(value) + len(key)
        if size > self.max_bytes:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (self.clock() + ttl, value)
        self.used += size
        while self.used > self.max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, key: str) -> None:
        _, value = self._items.pop(key)
        self.used -= len(value) + len(key)
