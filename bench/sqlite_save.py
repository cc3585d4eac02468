"""What one stored response costs the SQLite store, outside the gateway.

    .venv/bin/python bench/sqlite_save.py              # ~20 s
    .venv/bin/python bench/sqlite_save.py --saves 5000 --record-bytes 4000

Two parts, each run ``--rounds`` times, medians printed:

- layouts: the same upsert of a ``--record-bytes`` record into the table as schema 1
  made it (clustered on its key, WITHOUT ROWID) and as schema 2 does (a rowid table, the
  key UNIQUE), both with the updated_at index and the row-count trigger, with the
  store's connection settings and a PASSIVE checkpoint every 200 rows: CPU per save
  (checkpoints included) and WAL bytes written per save.
- store: ``SQLiteConversationStore.save_response`` itself on an event loop, the way the
  gateway calls it (one save per await, a 1 ms pause every 5 saves): CPU per save of the
  whole process (the checkpoint thread included) and the largest WAL seen.
- at the cap: the same saves into a store already holding ``--cap`` responses of one
  client (so that the saves trim the oldest as they go, as on a busy server), keyed as
  the gateway keys them (``scope:response id``), with the random ids of before and the
  time-ordered ones of ``new_response_id``.

Inside the gateway a commit costs ~2-3x these figures (its caches are cold; measured
with a timer around the commit: ~90 us); the ratios between layouts carry over.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))

from g4f_server.protocols.responses.render import new_id, new_response_id
from g4f_server.storage.sqlite import SQLiteConversationStore

ID_KINDS = {"random ids": lambda: new_id("resp"), "time-ordered ids": new_response_id}
SCOPE = "5f0e3c2a9b8d7e6f1a2b3c4d"  # one client's (conversations.owner_key)

TRIGGER = (
    "CREATE TRIGGER counted AFTER INSERT ON stored_response "
    "BEGIN UPDATE row_count SET n = n + 1 WHERE name = 'stored_response'; END"
)
LAYOUTS = {
    "schema 1 (WITHOUT ROWID)": (
        "CREATE TABLE stored_response (key TEXT PRIMARY KEY, record BLOB NOT NULL, "
        "updated_at REAL NOT NULL) WITHOUT ROWID"
    ),
    "schema 2 (rowid, key UNIQUE)": (
        "CREATE TABLE stored_response (key TEXT NOT NULL UNIQUE, record BLOB NOT NULL, "
        "updated_at REAL NOT NULL)"
    ),
}
UPSERT = (
    "INSERT INTO stored_response VALUES (?, ?, ?) ON CONFLICT (key) "
    "DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at"
)


def layout_round(table_sql: str, saves: int, record: bytes) -> tuple[float, float]:
    """(CPU us per save, WAL bytes written per save) for one layout."""
    path = Path(tempfile.mkdtemp(prefix="g4f-sqlite-bench-")) / "s.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in (
        table_sql,
        "CREATE INDEX stored_response_updated ON stored_response (updated_at)",
        "CREATE TABLE row_count (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO row_count VALUES ('stored_response', 0)",
        TRIGGER,
    ):
        db.execute(statement)
    fast = sqlite3.connect(path, timeout=0, isolation_level=None)
    fast.execute("PRAGMA synchronous=NORMAL")
    fast.execute("PRAGMA wal_autocheckpoint=0")
    frames = 0
    started = time.process_time()
    for i in range(saves):
        key = f"{random.getrandbits(96):024x}:resp_{random.getrandbits(96):024x}"
        fast.execute(UPSERT, (key, record, time.time()))
        if i % 200 == 199:
            _, log, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            frames += log
    cpu = (time.process_time() - started) / saves * 1e6
    page = db.execute("PRAGMA page_size").fetchone()[0]
    fast.close()
    db.close()
    # Frames counted at each checkpoint since the WAL last started over: an upper bound
    # when a checkpoint did not let it start over (then frames are counted twice).
    return cpu, frames * (page + 24) / saves


async def store_round(saves: int, record: dict) -> tuple[float, int]:
    path = Path(tempfile.mkdtemp(prefix="g4f-sqlite-bench-")) / "c.sqlite3"
    store = SQLiteConversationStore(path, ttl=3600, max_rows=10 * saves)
    await store.save_response("warm", record)  # opens the file, the thread and connections
    wal = Path(f"{path}-wal")
    biggest = 0
    started = time.process_time()  # every thread's: the checkpoints count too
    for i in range(saves):
        await store.save_response(f"r{i}", record)
        if i % 5 == 0:
            await asyncio.sleep(0.001)  # the loop idles; the store's thread may not
            biggest = max(biggest, wal.stat().st_size)
    cpu = (time.process_time() - started) / saves * 1e6
    await store.close()
    return cpu, biggest


async def cap_round(saves: int, record: dict, cap: int, new: Callable[[], str]) -> float:
    """CPU us per save (the whole process) into a store filled to ``cap`` beforehand."""
    path = Path(tempfile.mkdtemp(prefix="g4f-sqlite-bench-")) / "c.sqlite3"
    store = SQLiteConversationStore(path, ttl=3600, max_rows=cap)
    for i in range(cap):
        await store.save_response(f"{SCOPE}:{new()}", record)
        if i % 5 == 0:
            await asyncio.sleep(0)
    await asyncio.sleep(0.2)  # the filling's checkpoint is done
    started = time.process_time()
    for i in range(saves):
        await store.save_response(f"{SCOPE}:{new()}", record)
        if i % 5 == 0:
            await asyncio.sleep(0.001)
    cpu = (time.process_time() - started) / saves * 1e6
    await store.close()
    return cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record-bytes", type=int, default=1600, help="a bench answer's")
    parser.add_argument("--cap", type=int, default=10000, help="the store's max_rows")
    args = parser.parse_args()
    raw = os.urandom(args.record_bytes // 2).hex().encode()
    print(f"{args.saves} saves of a {len(raw)}-byte record, {args.rounds} rounds, medians\n")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in LAYOUTS}
    for _ in range(args.rounds):  # the layouts alternate: noise hits both alike
        for name, table_sql in LAYOUTS.items():
            results[name].append(layout_round(table_sql, args.saves, raw))
    print("| layout | CPU us / save | WAL kB written / save |")
    print("| --- | ---: | ---: |")
    for name, rows in results.items():
        cpu = statistics.median(r[0] for r in rows)
        wal = statistics.median(r[1] for r in rows)
        print(f"| {name} | {cpu:.1f} | {wal / 1000:.1f} |")
    record = {"response": {"output_text": raw.decode()}}
    rows = [asyncio.run(store_round(args.saves, record)) for _ in range(args.rounds)]
    cpu = statistics.median(r[0] for r in rows)
    wal = max(r[1] for r in rows)
    mb = wal / 2**20
    print(f"\nstore.save_response: {cpu:.1f} us CPU / save (process), largest WAL {mb:.1f} MB")
    capped: dict[str, list[float]] = {name: [] for name in ID_KINDS}
    for _ in range(args.rounds):
        for name, new in ID_KINDS.items():
            capped[name].append(asyncio.run(cap_round(args.saves, record, args.cap, new)))
    print(f"\nat the cap ({args.cap} rows, every save trims):\n")
    print("| response ids | CPU us / save (process) |")
    print("| --- | ---: |")
    for name, values in capped.items():
        print(f"| {name} | {statistics.median(values):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
