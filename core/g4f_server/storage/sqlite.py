"""The embedded conversation and response store: one SQLite file in the data folder
(``ConversationStore`` and ``ResponseStore`` in one object, a table each).

All access runs on one dedicated thread (a single-worker executor), so this process has
exactly one connection and one writer and the event loop never blocks on disk. WAL mode
and a busy timeout let several worker processes share the file safely.

Bounds, per table: a row untouched for ``ttl`` seconds is gone (checked on load, deleted
by the periodic ``purge``); beyond ``max_rows`` the least recently used rows go first
(held on every save).
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
_KEYS = {  # table -> (its key as an expression, its key columns)
    "conversation_state": ("(conversation_id, provider)", "conversation_id, provider"),
    "stored_response": ("key", "key"),
}
_SAVE_STATE = (
    "INSERT INTO conversation_state VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, provider) "
    "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
)
_SAVE_RESPONSE = (
    "INSERT INTO stored_response VALUES (?, ?, ?) ON CONFLICT (key) "
    "DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at"
)
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
        # Writes waiting for the writer: (SQL, its parameters but the time, the caller's future).
        self._queued: list[tuple[str, tuple[Any, ...], asyncio.Future[None]]] = []
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
        await self._write(_SAVE_STATE, row)

    async def _write(self, sql: str, row: tuple[Any, ...]) -> None:
        """Run ``sql`` (with ``row`` and the time) in one transaction with the writes queued
        meanwhile, then hold the row caps: under load many saves share one thread hop and
        one commit (a commit per save cost ~0.1 ms of CPU, and each SQLite call a GIL
        hand-over with the busy event loop). Returns once committed, so the next request
        (on any connection or worker) finds the row. Expired rows go in ``purge``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((sql, row, future))
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
                        for sql, row, _ in batch:
                            db.execute(sql, (*row, now))
                        self._cap(db)

                try:
                    await self._run(run)
                except Exception as exc:
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, _, future in batch:
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
        await self._write(_SAVE_RESPONSE, (key, orjson.dumps(record)))

    async def delete_response(self, key: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with _transaction(db):
                cursor = db.execute(
                    "DELETE FROM stored_response WHERE key = ? AND updated_at >= ?",
                    (key, time.time() - self.ttl),
                )
            return cursor.rowcount > 0

        return await self._run(delete)

    def _cap(self, db: sqlite3.Connection) -> None:
        """Beyond ``max_rows`` in a table, its least recently used rows go."""
        for table, count in db.execute("SELECT name, n FROM row_count").fetchall():
            if count > self.max_rows:
                key, columns = _KEYS[table]
                db.execute(
                    f"DELETE FROM {table} WHERE {key} IN ("
                    f"SELECT {columns} FROM {table} ORDER BY updated_at LIMIT ?)",
                    (count - self.max_rows,),
                )

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        for table in _TABLES:
            db.execute(f"DELETE FROM {table} WHERE updated_at < ?", (now - self.ttl,))
        self._cap(db)

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
