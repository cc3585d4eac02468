"""The media folder: generated images and audio, served by GET /media/{name}.

Names are generated here and nowhere else (``<unix time>-<32 hex>.<ext>``); the route
serves only names matching ``NAME``, so no client-chosen path ever reaches the file
system. 128 random bits make a name unguessable. Retention: files older than
``max_age`` go, then the oldest until the folder fits ``max_bytes``; enforced after
every write and periodically (several workers may share the folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from g4f_server import errors
from g4f_server.mediatypes import MIME_BY_EXT, sniff
from g4f_server.storage.files import atomic_write

NAME = re.compile(r"^[0-9]{10,12}-[0-9a-f]{32}\.(" + "|".join(MIME_BY_EXT) + r")$")
_MIME_TO_EXT = {mime: ext for ext, mime in MIME_BY_EXT.items()}
_STALE_TEMP = 3600.0  # a temp file this old was left by a crashed write


@dataclass(slots=True, frozen=True)
class StoredFile:
    name: str
    mime_type: str
    size: int


def new_file(data: bytes, mime_hint: str | None, max_file_size: int) -> StoredFile:
    """A fresh name and the type of media bytes about to be stored (every media store's
    rule): the type comes from the bytes, not the hint, unless the bytes are of no type
    we know (then the hint, if we know it)."""
    if not data:
        raise errors.ProviderError("The provider returned an empty media file")
    if len(data) > max_file_size:
        raise errors.ProviderError(
            f"Media file of {len(data)} bytes exceeds the limit of {max_file_size}"
        )
    sniffed = sniff(data)
    if sniffed is not None:
        mime, ext = sniffed
    else:
        hint = (mime_hint or "").split(";", 1)[0].strip().lower()
        ext = _MIME_TO_EXT.get(hint, "bin")
        mime = MIME_BY_EXT[ext]
    return StoredFile(f"{int(time.time())}-{secrets.token_hex(16)}.{ext}", mime, len(data))


class MediaStore:
    def __init__(self, folder: Path, *, max_age: float, max_bytes: int, max_file_size: int):
        self.folder = folder
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.max_file_size = max_file_size

    async def save(self, data: bytes, mime_hint: str | None = None) -> StoredFile:
        """Store bytes under a fresh name (see ``new_file``)."""
        stored = new_file(data, mime_hint, self.max_file_size)
        await asyncio.to_thread(self._write, stored.name, data)
        return stored

    def _write(self, name: str, data: bytes) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self.folder / name, data)
        self.prune(keep=name)

    async def fetch(self, name: str) -> Path | None:
        """The file to serve (MediaFiles.fetch): a path, checked as ``path`` checks it."""
        return self.path(name)

    def path(self, name: str) -> Path | None:
        """The file of a server-generated name, or None (bad name or gone)."""
        if not NAME.match(name):
            return None
        path = self.folder / name
        try:
            # lstat: a symlink planted in the folder is not one of our files.
            return path if stat.S_ISREG(path.lstat().st_mode) else None
        except FileNotFoundError:
            return None

    def prune(self, *, keep: str | None = None, now: float | None = None) -> int:
        """Apply the retention policy; returns how many files were deleted."""
        now = time.time() if now is None else now
        files: list[tuple[float, int, str]] = []
        deleted = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # another worker pruned it
            if entry.name.startswith(".tmp-"):
                if now - info.st_mtime > _STALE_TEMP:
                    deleted += _unlink(entry.path)
                continue
            if not NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue  # not ours: never delete what we did not create
            if entry.name != keep and now - info.st_mtime > self.max_age:
                deleted += _unlink(entry.path)
                continue
            files.append((info.st_mtime, info.st_size, entry.name))
        total = sum(size for _, size, _ in files)
        for _, size, name in sorted(files):
            if total <= self.max_bytes:
                break
            if name == keep:
                continue
            deleted += _unlink(str(self.folder / name))
            total -= size
        return deleted

    async def prune_async(self) -> int:
        return await asyncio.to_thread(self.prune)


def _unlink(path: str) -> int:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
        return 1
    return 0
