"""The embedded conversation and response store: one SQLite file in the data folder
(``ConversationStore`` and ``ResponseStore`` in one object, a table each).

Two connections per process. Writes (saves) run on the event loop itself, on a
connection that never waits: WAL with ``synchronous=NORMAL`` makes a commit a few
writes to the OS page cache (~40 us of CPU) and no fsync, where handing it to a thread
cost ~130 us of CPU in thread wake-ups alone. The first save of a loop iteration is
committed at once, inside the caller's await (no round trip through the loop); saves
later in the same iteration are queued and share one transaction. Several at once
(under load), or while the thread is writing, go to the other connection on a dedicated
thread instead: the batch shares the hop, and SQLite's C work runs beside the loop
(measured: c32 0.59 -> 0.63 of chat's req/s). So does a save when the write lock is
someone else's (another worker, a checkpoint) or anything else fails: the thread waits
for the lock (busy timeout) and reports real errors. That thread also does the reads,
deletes, sweeps and the WAL checkpoints (the fsyncs), so the loop never waits for a
lock or the disk. Either way a save returns once committed: the next request, on any
connection or worker process, finds the row, and it survives the process.

A checkpoint (every ``CHECKPOINT_ROWS`` rows the loop committed) is PASSIVE: it copies
the WAL into the database while writers go on. Under a steady stream of saves it never
catches up, and the WAL, which starts over only once all of it is copied, grew without
bound (26 MB after 1,200 stored responses). So beyond ``WAL_RESTART_FRAMES`` a RESTART
follows: it holds the write lock for what is left to copy (saves meanwhile wait on the
thread), and the next commit starts the WAL over.

Bounds, per table: a row untouched for ``ttl`` seconds is gone (checked on load, deleted
by the periodic ``purge``); beyond ``max_rows`` the least recently used rows go first.
The cap is held by the saves: a worker looks at the row counts at most every
``CAP_CHECK_ROWS`` saves of its own (fewer when the table is near full), and when it
trims, it trims ``max_rows // 100`` rows (at most ``CAP_CHECK_ROWS``) below the cap, so
that a full table costs a look per batch of saves, not per save. A single worker
never keeps more than ``max_rows``; several may, by the rows the others saved since
their last look.
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

from g4f_server.logs import get_logger
from g4f_server.storage.interfaces import response_too_large

if TYPE_CHECKING:
    import sqlite3  # imported on first use: a server without conversations never loads it

log = get_logger("g4f_server.storage")
T = TypeVar("T")
Statement = tuple[str, tuple[Any, ...]]  # SQL, its row but the time
Write = tuple[str, tuple[Any, ...], "asyncio.Future[None]"]  # a statement, its caller
# Rows the loop's connection commits between checkpoints (it has auto-checkpoints off, so
# that their fsyncs happen on the thread): ~5 pages a row, near SQLite's 1000-page default.
CHECKPOINT_ROWS = 200
WAL_RESTART_FRAMES = 4000  # ~16 MB of 4 KiB pages: the WAL's bound (module's note)
CAP_CHECK_ROWS = 64  # see the module's note on bounds

# Rowid tables, the key UNIQUE: a save appends at the end of the table, so its commit
# writes ~3 pages (the row's, its key's, its updated_at entry's) and the row count's,
# where a table clustered on a random key (WITHOUT ROWID, schema 1) split its pages and
# wrote ~7 (bench/sqlite_save.py: 77 -> 48 us of CPU and 28 -> 23 kB of WAL a save). The columns
# keep schema 1's order, so that an older g4f-server still reads and writes these tables.
SCHEMA_VERSION = 2
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conversation_state (conversation_id TEXT NOT NULL, "
    "provider TEXT NOT NULL, state BLOB NOT NULL, updated_at REAL NOT NULL, "
    "UNIQUE (conversation_id, provider))",
    "CREATE INDEX IF NOT EXISTS conversation_state_updated ON conversation_state (updated_at)",
    "CREATE TABLE IF NOT EXISTS stored_response (key TEXT NOT NULL UNIQUE, "
    "record BLOB NOT NULL, updated_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS stored_response_updated ON stored_response (updated_at)",
    "CREATE TABLE IF NOT EXISTS row_count (name TEXT PRIMARY KEY, n INTEGER NOT NULL) "
    "WITHOUT ROWID",
)
_TABLES = ("conversation_state", "stored_response")
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
_ROWS_COUNTED = tuple(
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
# The stored responses' bytes, kept the same way (the upsert's update fires the update
# trigger): the ``max_bytes`` bound is a lookup too. Its name is no table's.
_BYTES_COUNTED = (
    "CREATE TRIGGER IF NOT EXISTS stored_response_bytes_added AFTER INSERT ON "
    "stored_response BEGIN UPDATE row_count SET n = n + length(NEW.record) "
    "WHERE name = 'stored_response_bytes'; END",
    "CREATE TRIGGER IF NOT EXISTS stored_response_bytes_changed AFTER UPDATE OF record ON "
    "stored_response BEGIN UPDATE row_count SET n = n + length(NEW.record) - "
    "length(OLD.record) WHERE name = 'stored_response_bytes'; END",
    "CREATE TRIGGER IF NOT EXISTS stored_response_bytes_removed AFTER DELETE ON "
    "stored_response BEGIN UPDATE row_count SET n = n - length(OLD.record) "
    "WHERE name = 'stored_response_bytes'; END",
    "INSERT OR IGNORE INTO row_count SELECT 'stored_response_bytes', "
    "COALESCE(SUM(length(record)), 0) FROM stored_response",
)
_COUNTED = (*_ROWS_COUNTED, *_BYTES_COUNTED)
_BYTES = "stored_response_bytes"


def _create_schema(db: sqlite3.Connection) -> None:
    """The tables at ``SCHEMA_VERSION``, in the caller's transaction. A database of
    schema 1 has its rows copied over; its row counts are taken again."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    old: list[str] = []
    if version < SCHEMA_VERSION:
        found = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        old = [name for (name,) in found if name in _TABLES]
    for table in old:  # the new table's index and triggers take these names
        db.execute(f"DROP TRIGGER IF EXISTS {table}_added")
        db.execute(f"DROP TRIGGER IF EXISTS {table}_removed")
        db.execute(f"DROP INDEX IF EXISTS {table}_updated")
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
    for statement in _SCHEMA:
        db.execute(statement)
    for table in old:
        db.execute(f"INSERT INTO {table} SELECT * FROM {table}_v1")
        db.execute(f"DROP TABLE {table}_v1")
        db.execute("DELETE FROM row_count WHERE name = ?", (table,))
    for statement in _COUNTED:
        db.execute(statement)
    if version < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class SQLiteConversationStore:
    def __init__(
        self,
        path: Path,
        *,
        ttl: float,
        max_rows: int,
        max_record: int = 16 * 1024**2,
        max_bytes: int = 512 * 1024**2,
    ) -> None:
        self.path = path
        self.ttl = ttl
        self.max_rows = max_rows
        self.max_record = max_record  # one stored response (response_too_large above it)
        self.max_bytes = max_bytes  # all stored responses
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # the thread's
        self._fast: sqlite3.Connection | None = None  # the loop's, made with the thread's
        self._queued: list[Write] = []  # for the loop's next commit
        self._flush: asyncio.Handle | None = None  # that commit, scheduled
        self._tick: asyncio.Handle | None = None  # set while this iteration has committed
        self._slow: list[Write] = []  # for the thread's writer
        self._writer: asyncio.Task | None = None
        self._unchecked = 0  # rows the loop committed since the last checkpoint
        self._checkpoint: asyncio.Task | None = None
        self._room = 0  # saves this process may commit before it looks at the row counts
        self._room_bytes = 0  # response bytes it may commit before it looks at their total
        self._slack = min(CAP_CHECK_ROWS, max_rows // 100)  # trimmed below the cap

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
                _create_schema(db)
            # The loop's: no busy wait (timeout 0: a held lock is an error at once, and the
            # write goes to this thread), no checkpoint in its commits.
            fast = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
            fast.execute("PRAGMA synchronous=NORMAL")
            fast.execute("PRAGMA wal_autocheckpoint=0")
            self._db, self._fast = db, fast
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
        """Run ``sql`` (with ``row`` and the time) and return once committed (see the
        module's note). Expired rows go in ``purge``."""
        loop = asyncio.get_running_loop()
        db = self._fast
        if db is not None and self._writer is None and self._tick is None:
            # The first save of this loop iteration, the thread idle: committed now, with
            # no round trip through the loop (two more iterations, an epoll call each);
            # saves later in the iteration are queued, and share a commit.
            try:
                self._commit(db, [(sql, row)])
            except Exception:  # a lock held elsewhere (or worse): queued for the thread
                pass
            else:
                self._tick = loop.call_soon(self._next_tick)
                self._committed(1)
                return
        future: asyncio.Future[None] = loop.create_future()
        self._queued.append((sql, row, future))
        if self._flush is None:
            self._flush = loop.call_soon(self._commit_queued)
        await future  # a caller that leaves (cancelled) does not take its row out of the batch

    def _next_tick(self) -> None:
        self._tick = None

    def _commit_queued(self) -> None:
        """The loop's commit of the queued writes; the thread's if it cannot be had now."""
        self._flush = None
        batch, self._queued = self._queued, []
        db = self._fast
        # Not open yet, the thread is writing (later saves join its next batch), or several
        # saves at once (under load): the thread, whose SQLite work runs beside the loop
        # (the GIL is released in sqlite3_step) and whose hop the batch shares.
        if db is None or self._writer is not None or len(batch) > 1:
            self._to_thread(batch)
            return
        try:
            self._commit(db, [(sql, row) for sql, row, _ in batch])
        except Exception:  # a lock held elsewhere (or worse): the thread waits, or reports
            self._to_thread(batch)
            return
        for _, _, future in batch:
            if not future.done():
                future.set_result(None)
        self._committed(len(batch))

    def _committed(self, rows: int) -> None:
        """Count rows the loop committed; checkpoint the WAL every ``CHECKPOINT_ROWS``."""
        self._unchecked += rows
        if self._unchecked >= CHECKPOINT_ROWS and self._checkpoint is None:
            self._unchecked = 0
            self._checkpoint = asyncio.ensure_future(self._checkpoint_wal())

    def _commit(self, db: sqlite3.Connection, batch: list[Statement]) -> None:
        now = time.time()
        size = sum(len(row[1]) for sql, row in batch if sql is _SAVE_RESPONSE)
        if len(batch) == 1 and self._room > 0 and size <= self._room_bytes:
            sql, row = batch[0]  # the statement is its own transaction
            db.execute(sql, (*row, now))
            self._room -= 1
            self._room_bytes -= size
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, row in batch:
                db.execute(sql, (*row, now))
            self._room -= len(batch)
            self._room_bytes -= size
            if self._room < 0 or self._room_bytes < 0:
                self._cap(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # also after a failed COMMIT
                db.execute("ROLLBACK")
            raise

    def _to_thread(self, batch: list[Write]) -> None:
        self._slow += batch
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_slow())

    async def _write_slow(self) -> None:
        """The thread's writer: waits for the lock (busy timeout), reports real errors."""
        try:
            while self._slow:
                batch, self._slow = self._slow, []
                try:
                    rows = [(sql, row) for sql, row, _ in batch]
                    await self._run(lambda db, rows=rows: self._commit(db, rows))
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

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL into the database (the fsyncs), on the thread (module's note)."""

        def checkpoint(db: sqlite3.Connection) -> None:
            _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames > WAL_RESTART_FRAMES:
                db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

        try:
            await self._run(checkpoint)
        except Exception as exc:  # a full disk: the next checkpoint tries again
            log.warning("sqlite_checkpoint_failed", error=repr(exc))
        finally:
            self._checkpoint = None

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
        if len(blob) > self.max_record:
            raise response_too_large(len(blob), self.max_record)
        await self._write(_SAVE_RESPONSE, (key, blob))

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
        """Beyond ``max_rows`` in a table, its least recently used rows go (down to the
        slack below it), and beyond ``max_bytes`` of stored responses the least recently
        saved of them; sets the saves (and bytes) until the next look."""
        room = CAP_CHECK_ROWS
        counts = dict(db.execute("SELECT name, n FROM row_count").fetchall())
        stored = counts.pop(_BYTES, 0)
        if stored > self.max_bytes:
            # Newest first, the running total of their sizes: what is past the bound goes.
            db.execute(
                "DELETE FROM stored_response WHERE rowid IN (SELECT rowid FROM (SELECT "
                "rowid, SUM(length(record)) OVER (ORDER BY updated_at DESC, rowid DESC) "
                "AS kept FROM stored_response) WHERE kept > ?)",
                (self.max_bytes,),
            )
            stored = db.execute("SELECT n FROM row_count WHERE name = ?", (_BYTES,)).fetchone()[0]
            counts = dict(db.execute("SELECT name, n FROM row_count").fetchall())
            counts.pop(_BYTES, None)
        self._room_bytes = self.max_bytes - stored
        for table, count in counts.items():
            if count > self.max_rows:
                keep = self.max_rows - self._slack
                db.execute(
                    f"DELETE FROM {table} WHERE rowid IN ("
                    f"SELECT rowid FROM {table} ORDER BY updated_at LIMIT ?)",
                    (count - keep,),
                )
                count = keep
            room = min(room, self.max_rows - count)
        self._room = room

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
        if self._flush is not None:  # the queued writes are committed first
            self._flush.cancel()
            self._commit_queued()
        if self._writer is not None:
            await self._writer
        if self._checkpoint is not None:
            await self._checkpoint
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            # The last connection to close checkpoints the WAL: the thread's, after the loop's.
            fast, self._fast = self._fast, None
            if fast is not None:
                fast.close()
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
