"""The data folder: media, uploaded cookies and the conversation database.

Layout under ``AppConfig.data_dir``::

    media/                    generated files served by GET /media/{name}
    cookies/<domain>.json     uploaded cookies, one file per domain (mode 0600)
    conversations.sqlite3     conversation state and history (WAL mode)

Every file is written atomically (``files.atomic_write``): a crash leaves the old file
or the new one, never half of one.

The storage wing. Rule: a backend implements an interface of ``storage/interfaces.py``
and nothing more: storage imports the contract and the foundation only, never providers,
pipeline, controls, protocols or web.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(slots=True, frozen=True)
class DataDir:
    root: Path

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def cookies(self) -> Path:
        return self.root / "cookies"

    @property
    def conversations_db(self) -> Path:
        return self.root / "conversations.sqlite3"

    def ensure(self) -> DataDir:
        """Create the folders; cookies are secrets, so the tree is private to the user."""
        for path in (self.root, self.media, self.cookies):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.cookies.chmod(0o700)
        return self
