"""The embedded conversation and response store: one SQLite file in the data folder
(``ConversationStore`` and ``ResponseStore`` in one object, a table each).

All access runs on one dedicated thread (a single-worker executor), so this process has
exactly one connection and one writer and the event loop never blocks on disk. WAL mode
and a busy timeout let several worker processes share the file safely.

Bounds, per table: a row untouched for ``ttl`` seconds is gone (checked on load, purged on
save and periodically); beyond ``max_rows`` the least recently used rows go first.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

if TYPE_CHECKING:
    import sqlite3  # imported on first use: a server without conversations never loads it

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversation_state (
    conversation_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    state BLOB NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, provider)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_state_updated ON conversation_state (updated_at);
CREATE TABLE IF NOT EXISTS stored_response (
    key TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stored_response_updated ON stored_response (updated_at);
CREATE TABLE IF NOT EXISTS row_count (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
"""
_TABLES = ("conversation_state", "stored_response")
# Each table's row count is kept by triggers, so that enforcing ``max_rows`` on every save
# costs a lookup instead of a COUNT(*) over the whole table (O(rows): ~0.5 ms at 10k).
# A database made before the triggers gets its count taken once, when they are created.
_COUNTED = tuple(
    statement
    for table in _TABLES
    for statement in (
        f"CREATE TRIGGER IF NOT EXISTS {table}_added AFTER INSERT ON {table} "
        f"BEGIN UPDATE row_count SET n = n + 1 WHERE name = '{table}'; END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_removed AFTER DELETE ON {table} "
        f"BEGIN UPDATE row_count SET n = n - 1 WHERE name = '{table}'; END",
        f"INSERT OR IGNORE INTO row_count SELECT '{table}', COUNT(*) FROM {table}",
    )
)


class SQLiteConversationStore:
    def __init__(self, path: Path, *, ttl: float, max_rows: int) -> None:
        self.path = path
        self.ttl = ttl
        self.max_rows = max_rows
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._queued: list[tuple[Callable[[sqlite3.Connection, float], None], asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="g4f-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connection()))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            import sqlite3

            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            # It holds conversation history and provider session cookies: owner only
            # (SQLite gives the -wal and -shm files the database file's mode).
            os.chmod(self.path, 0o600)
            # Switching to WAL needs an exclusive lock and SQLite does not wait for it
            # when another process is opening the file at the same moment: retry.
            for attempt in range(100):
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 99:
                        raise
                    time.sleep(0.02)
            db.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it safe
            with _transaction(db):  # the write lock up front: no read-to-write upgrade
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                for statement in _COUNTED:
                    db.execute(statement)
            self._db = db
        return self._db

    async def load(self, conversation_id: str, provider: str) -> dict[str, Any] | None:
        def load(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute(
                "SELECT state, updated_at FROM conversation_state "
                "WHERE conversation_id = ? AND provider = ?",
                (conversation_id, provider.lower()),
            ).fetchone()
            if row is None or time.time() - row[1] > self.ttl:
                return None
            return orjson.loads(row[0])

        return await self._run(load)

    async def save(self, conversation_id: str, provider: str, state: dict[str, Any]) -> None:
        row = (conversation_id, provider.lower(), orjson.dumps(state))
        await self._write(
            lambda db, now: db.execute(
                "INSERT INTO conversation_state VALUES (?, ?, ?, ?) "
                "ON CONFLICT (conversation_id, provider) "
                "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (*row, now),
            )
        )

    async def _write(self, write: Callable[[sqlite3.Connection, float], Any]) -> None:
        """Run ``write`` in one transaction with the writes queued meanwhile, then purge:
        under load many saves share one thread hop and one commit (a commit per save cost
        ~0.1 ms of CPU). Returns once committed, so the next request finds the row."""
        future = asyncio.get_running_loop().create_future()
        self._queued.append((write, future))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_queued())
        await asyncio.shield(future)  # a caller that leaves does not undo the others' commit

    async def _write_queued(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []

                def run(db: sqlite3.Connection, batch: list = batch) -> None:
                    now = time.time()
                    with _transaction(db):
                        for write, _ in batch:
                            write(db, now)
                        self._purge(db, now)

                try:
                    await self._run(run)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._writer = None

    async def load_response(self, key: str) -> dict[str, Any] | None:
        def load(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute(
                "SELECT record, updated_at FROM stored_response WHERE key = ?", (key,)
            ).fetchone()
            if row is None or time.time() - row[1] > self.ttl:
                return None
            return orjson.loads(row[0])

        return await self._run(load)

    async def save_response(self, key: str, record: dict[str, Any]) -> None:
        blob = orjson.dumps(record)
        await self._write(
            lambda db, now: db.execute(
                "INSERT INTO stored_response VALUES (?, ?, ?) ON CONFLICT (key) "
                "DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
                (key, blob, now),
            )
        )

    async def delete_response(self, key: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with _transaction(db):
                cursor = db.execute(
                    "DELETE FROM stored_response WHERE key = ? AND updated_at >= ?",
                    (key, time.time() - self.ttl),
                )
            return cursor.rowcount > 0

        return await self._run(delete)

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        for table, key, columns in (
            ("conversation_state", "(conversation_id, provider)", "conversation_id, provider"),
            ("stored_response", "key", "key"),
        ):
            db.execute(f"DELETE FROM {table} WHERE updated_at < ?", (now - self.ttl,))
            (count,) = db.execute("SELECT n FROM row_count WHERE name = ?", (table,)).fetchone()
            if count > self.max_rows:
                db.execute(
                    f"DELETE FROM {table} WHERE {key} IN ("
                    f"SELECT {columns} FROM {table} ORDER BY updated_at LIMIT ?)",
                    (count - self.max_rows,),
                )

    async def purge(self) -> None:
        if self._db is None and not self.path.exists():
            return  # nothing stored yet: no file, thread or connection just to find that out

        def purge(db: sqlite3.Connection) -> None:
            with _transaction(db):
                self._purge(db, time.time())

        await self._run(purge)

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer  # the queued writes are committed first
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(executor, close)
        executor.shutdown(wait=True)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so two processes
    never both read-then-write and deadlock on the upgrade."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
