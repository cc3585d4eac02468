"""Conversation state: the SQLite store (restart, TTL, bounds, concurrency), scoping, history."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from g4f_server.pipeline.history import (
    HISTORY,
    MAX_HISTORY_BYTES,
    MAX_HISTORY_MESSAGES,
    remember_turn,
    with_history,
)
from g4f_server.pipeline.scope import conversation_key
from g4f_server.pipeline.transcript import Transcript
from g4f_server.requests import ChatRequest
from g4f_server.storage.sqlite import SQLiteConversationStore
from tests.fake_providers import Scripted
from tests.media_providers import Memo

HELLO = [{"role": "user", "content": "hello"}]


async def chat(
    base: str,
    path: str = "/v1/chat/completions",
    headers: dict[str, str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    body.setdefault("messages", HELLO)
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + path, json=body, headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_state_survives_a_restart(aiohttp_server: Any, tmp_path: Path) -> None:
    async def start(memo: Memo) -> Any:
        app = create_app(AppConfig(data_dir=tmp_path), plugins=[memo], load_entrypoints=False)
        return await aiohttp_server(app)

    first = Memo()
    server = await start(first)
    base = str(server.make_url("")).rstrip("/")
    await chat(base, conversation_id="conv-1")
    await chat(base, "/api/Memo/conv-1/chat/completions")
    assert [s["conversation"] for s in first.seen] == [None, {"turn": 1}]
    await server.close()

    second = Memo()
    server = await start(second)
    base = str(server.make_url("")).rstrip("/")
    reply = await chat(base, "/api/Memo/conv-1/chat/completions")
    assert reply["choices"][0]["message"]["content"] == "turn 3"
    assert second.seen[0]["conversation"] == {"turn": 2}
    await chat(base, conversation_id="conv-2")
    assert second.seen[1]["conversation"] is None  # other ids stay separate
    await server.close()
    # The database is a plain SQLite file in the data folder, in WAL mode.
    db = sqlite3.connect(tmp_path / "conversations.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


async def test_store_round_trip_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = SQLiteConversationStore(path, ttl=3600, max_rows=100)
    assert await store.load("a", "P") is None
    await store.save("a", "P", {"upstream": "u-1", "nested": {"n": [1, 2]}})
    await store.save("a", "P", {"upstream": "u-2"})
    assert await store.load("a", "p") == {"upstream": "u-2"}  # provider names are case-blind
    await store.close()
    await store.close()  # idempotent: the app closes it from two cleanup contexts
    reopened = SQLiteConversationStore(path, ttl=3600, max_rows=100)
    assert await reopened.load("a", "P") == {"upstream": "u-2"}
    await reopened.close()


async def test_ttl_and_max_rows(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "c.sqlite3", ttl=0.2, max_rows=3)
    await store.save("old", "P", {"n": 0})
    await asyncio.sleep(0.3)
    assert await store.load("old", "P") is None  # expired on read
    for i in range(5):
        await store.save(f"c{i}", "P", {"n": i})
    assert [await store.load(f"c{i}", "P") for i in range(5)] == [
        None,
        None,
        {"n": 2},
        {"n": 3},
        {"n": 4},
    ]
    db = sqlite3.connect(tmp_path / "c.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM conversation_state").fetchone() == (3,)
    db.close()
    await store.close()


async def test_concurrent_writers_do_not_corrupt(tmp_path: Path) -> None:
    # Two stores on one file stand for two worker processes; each has its own thread.
    path = tmp_path / "c.sqlite3"
    a = SQLiteConversationStore(path, ttl=3600, max_rows=10_000)
    b = SQLiteConversationStore(path, ttl=3600, max_rows=10_000)
    await asyncio.gather(
        *(a.save(f"a{i}", "P", {"i": i}) for i in range(100)),
        *(b.save(f"b{i}", "P", {"i": i}) for i in range(100)),
        *(b.save("shared", "P", {"i": i}) for i in range(50)),
    )
    assert [await b.load(f"a{i}", "P") for i in range(100)] == [{"i": i} for i in range(100)]
    assert [await a.load(f"b{i}", "P") for i in range(100)] == [{"i": i} for i in range(100)]
    assert (await a.load("shared", "P") or {}).get("i") in range(50)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    await a.close()
    await b.close()


def test_conversation_keys_are_scoped_by_client() -> None:
    alice = {"Authorization": "Bearer key-a"}
    bob = {"Authorization": "Bearer key-b"}
    assert conversation_key(alice, "c1") == conversation_key(dict(alice), "c1")
    assert conversation_key(alice, "c1") != conversation_key(bob, "c1")
    assert conversation_key(alice, "c1") != conversation_key(alice, "c2")
    assert conversation_key(alice, "c1", user="u1") != conversation_key(alice, "c1", user="u2")
    assert conversation_key({}, "c1", provider_key="p1") != conversation_key({}, "c1")
    assert conversation_key(alice, "c1").endswith(":c1")
    assert "key-a" not in conversation_key(alice, "c1")


def _request(*messages: dict[str, Any]) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", "messages": list(messages)})


def _reply(text: str) -> Transcript:
    transcript = Transcript()
    transcript.text.append(text)
    return transcript


def _roles(chat: ChatRequest) -> list[tuple[str, str]]:
    return [(m.role, m.text()) for m in chat.messages]


async def test_history_is_prepended_and_kept(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "c.sqlite3", ttl=3600, max_rows=100)
    key = conversation_key({}, "c1")
    first = await with_history(
        store, key, _request({"role": "system", "content": "be brief"}, HELLO[0])
    )
    assert _roles(first) == [("system", "be brief"), ("user", "hello")]
    await remember_turn(store, key, first, _reply("hi!"))

    second = await with_history(store, key, _request({"role": "user", "content": "and now?"}))
    assert _roles(second) == [
        ("system", "be brief"),
        ("user", "hello"),
        ("assistant", "hi!"),
        ("user", "and now?"),
    ]
    await remember_turn(store, key, second, _reply("still here"))

    # A new system message replaces the stored one; the turns stay.
    third = await with_history(
        store,
        key,
        _request({"role": "system", "content": "be verbose"}, {"role": "user", "content": "3"}),
    )
    assert _roles(third)[0] == ("system", "be verbose")
    assert _roles(third)[-3:] == [("user", "and now?"), ("assistant", "still here"), ("user", "3")]

    # A client that sends its own history is left alone.
    own = _request(
        HELLO[0], {"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}
    )
    assert await with_history(store, key, own) is own
    # Another scope sees nothing.
    other = _request({"role": "user", "content": "hi"})
    assert await with_history(store, conversation_key({}, "c2"), other) is other
    await store.close()


async def test_history_keeps_tool_calls_and_is_bounded(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "c.sqlite3", ttl=3600, max_rows=100)
    key = "k:tools"
    transcript = Transcript()
    transcript.tools[0] = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": "{}"},
    }
    turn = await with_history(store, key, _request(HELLO[0]))
    await remember_turn(store, key, turn, transcript)
    nxt = await with_history(
        store, key, _request({"role": "tool", "tool_call_id": "call_1", "content": "sunny"})
    )
    assert nxt.messages[1].tool_calls and nxt.messages[1].tool_calls[0].id == "call_1"
    assert nxt.messages[2].role == "tool"

    big = "w" * 100
    turn = _request({"role": "system", "content": "sys"}, HELLO[0])
    for i in range(MAX_HISTORY_MESSAGES):
        await remember_turn(store, "k:long", turn, _reply(f"{big} {i}"))
        turn = await with_history(store, "k:long", _request({"role": "user", "content": str(i)}))
    stored = (await store.load("k:long", HISTORY) or {})["messages"]
    assert len(stored) <= MAX_HISTORY_MESSAGES
    assert stored[0] == {"role": "system", "content": "sys"}
    assert stored[1]["role"] == "user"  # trimmed at a turn boundary
    assert stored[-1]["content"].endswith(f" {MAX_HISTORY_MESSAGES - 1}")
    await store.close()


async def test_history_trim_keeps_the_newest_turns_within_the_byte_bound(
    tmp_path: Path,
) -> None:
    """One request with a history far over both bounds (issue 17: trimming it popped the
    oldest message one at a time, re-serializing the rest each time)."""
    store = SQLiteConversationStore(tmp_path / "c.sqlite3", ttl=3600, max_rows=100)
    big = "b" * (MAX_HISTORY_BYTES // 50)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "sys"}]
    for i in range(60):  # 60 x ~42 KiB, ~2.5 MiB: over the byte bound, under the count
        messages += [
            {"role": "user", "content": f"{i} {big}"},
            {"role": "assistant", "content": "ok"},
        ]
    messages.append({"role": "user", "content": "last"})
    await remember_turn(store, "k:big", _request(*messages), _reply("done"))
    stored = (await store.load("k:big", HISTORY) or {})["messages"]
    import orjson

    assert len(orjson.dumps(stored)) <= MAX_HISTORY_BYTES
    assert stored[0] == {"role": "system", "content": "sys"}
    assert stored[1]["role"] == "user"  # never an orphaned reply first
    assert stored[-2:] == [
        {"role": "user", "content": "last"},
        {"role": "assistant", "content": "done"},
    ]
    kept = [m for m in stored if m["role"] == "user" and m["content"] != "last"]
    assert 40 < len(kept) < 50  # as many of the newest turns as fit
    assert kept[-1]["content"].startswith("59 ")
    await store.close()


async def test_expired_rows_are_swept(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "c.sqlite3", ttl=0.1, max_rows=100)
    await store.save("a", "P", {})
    time.sleep(0.2)
    await store.purge()
    db = sqlite3.connect(tmp_path / "c.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM conversation_state").fetchone() == (0,)
    db.close()
    await store.close()


async def test_chat_route_keeps_history_per_client(start_gateway: Any, tmp_path: Path) -> None:
    memo = Memo()
    base = await start_gateway(plugins=[memo], data_dir=str(tmp_path))
    alice = {"Authorization": "Bearer alice"}
    await chat(base, conversation_id="same", headers=alice)
    await chat(
        base,
        conversation_id="same",
        headers=alice,
        messages=[{"role": "user", "content": "second"}],
    )
    assert [(m.role, m.text()) for m in memo.seen[1]["messages"]] == [
        ("user", "hello"),
        ("assistant", "turn 1"),
        ("user", "second"),
    ]
    assert memo.seen[1]["conversation"] == {"turn": 1}
    # Bob uses the same id with other credentials: a conversation of his own.
    await chat(base, conversation_id="same", headers={"Authorization": "Bearer bob"})
    assert memo.seen[2]["conversation"] is None
    assert len(memo.seen[2]["messages"]) == 1


async def test_conversation_database_is_private(start_gateway: Any, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # a data folder the operator made world-readable
    memo = Memo()
    base = await start_gateway(plugins=[memo], data_dir=str(tmp_path))
    await chat(base, conversation_id="private")
    db = tmp_path / "conversations.sqlite3"
    assert db.exists()
    assert db.stat().st_mode & 0o077 == 0


class SlowSaves:
    """The app's store, with every save taking a while (a busy disk, a remote Redis)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def load(self, conversation_id: str, provider: str) -> dict[str, Any] | None:
        return await self.inner.load(conversation_id, provider)

    async def save(self, conversation_id: str, provider: str, state: dict[str, Any]) -> None:
        await asyncio.sleep(0.2)
        await self.inner.save(conversation_id, provider, state)

    async def close(self) -> None:
        await self.inner.close()


async def test_a_streamed_turn_is_stored_before_the_client_sees_its_end(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """A client that sends its next turn the moment [DONE] arrives (on a new connection)
    must find the previous turn stored."""
    from g4f_server.storage.interfaces import CONVERSATIONS

    memo = Memo()
    app = create_app(AppConfig(data_dir=tmp_path), plugins=[memo], load_entrypoints=False)
    app[CONVERSATIONS] = SlowSaves(app[CONVERSATIONS])
    server = await aiohttp_server(app)
    url = str(server.make_url("/v1/chat/completions"))
    body = {"messages": HELLO, "conversation_id": "quick", "stream": True}
    async with aiohttp.ClientSession() as s, s.post(url, json=body) as resp:
        seen = b""
        while not seen.endswith(b"data: [DONE]\n\n"):  # as SDKs do: stop at [DONE]
            seen += await asyncio.wait_for(resp.content.readany(), 5)
        reply = await chat(str(server.make_url("")).rstrip("/"), conversation_id="quick")
    assert memo.seen[1]["conversation"] == {"turn": 1}
    assert reply["choices"][0]["message"]["content"] == "turn 2"


class BrokenSaves(SlowSaves):
    async def save(self, conversation_id: str, provider: str, state: dict[str, Any]) -> None:
        raise OSError("disk full")


async def test_a_failing_store_does_not_cost_the_client_its_answer(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    from structlog.testing import capture_logs

    from g4f_server.storage.interfaces import CONVERSATIONS

    app = create_app(AppConfig(data_dir=tmp_path), plugins=[Memo()], load_entrypoints=False)
    app[CONVERSATIONS] = BrokenSaves(app[CONVERSATIONS])
    server = await aiohttp_server(app)
    url = str(server.make_url("/v1/chat/completions"))
    with capture_logs() as logs:
        async with aiohttp.ClientSession() as s:
            body = {"messages": HELLO, "conversation_id": "c", "stream": True}
            async with s.post(url, json=body) as resp:
                assert resp.status == 200
                assert (await resp.read()).endswith(b"data: [DONE]\n\n")
            async with s.post(url, json={**body, "stream": False}) as resp:
                assert resp.status == 200
                assert (await resp.json())["choices"][0]["message"]["content"] == "turn 1"
    failures = [e for e in logs if e["event"] == "conversation_not_saved"]
    assert len(failures) == 2 and all(f["log_level"] == "error" for f in failures)


async def test_stored_responses_share_the_bounds(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "c.sqlite3", ttl=0.2, max_rows=2)
    await store.save_response("old", {"n": 0})
    await asyncio.sleep(0.3)
    assert await store.load_response("old") is None  # expired
    assert await store.delete_response("old") is False
    for i in range(3):
        await store.save_response(f"r{i}", {"n": i})
        await store.save(f"c{i}", "P", {"n": i})  # the tables are bounded each on its own
    assert [await store.load_response(f"r{i}") for i in range(3)] == [None, {"n": 1}, {"n": 2}]
    assert [await store.load(f"c{i}", "P") for i in range(3)] == [None, {"n": 1}, {"n": 2}]
    assert await store.delete_response("r1") is True
    assert await store.load_response("r1") is None
    await store.close()


async def test_a_database_made_before_the_row_counts_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE conversation_state (conversation_id TEXT NOT NULL, provider TEXT NOT NULL, "
        "state BLOB NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (conversation_id, provider)) "
        "WITHOUT ROWID"
    )
    now = time.time()
    db.executemany(
        "INSERT INTO conversation_state VALUES (?, 'p', '{}', ?)",
        [(f"old{i}", now - 10 + i) for i in range(5)],
    )
    db.commit()
    db.close()
    store = SQLiteConversationStore(path, ttl=3600, max_rows=3)
    await store.save("new", "P", {"n": 1})
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM conversation_state").fetchone() == (3,)
    assert db.execute("SELECT n FROM row_count WHERE name = 'conversation_state'").fetchone() == (
        3,
    )
    db.close()
    await store.close()


async def test_a_conversation_id_in_the_path_is_held_to_the_body_limit(make_client: Any) -> None:
    client = await make_client(Scripted())
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}
    resp = await client.post(f"/api/Echo/{'c' * 201}/chat/completions", json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == "conversation_id" and "200" in error["message"]
    resp = await client.post(f"/api/Echo/{'c' * 200}/chat/completions", json=body)
    assert resp.status == 200


def _from(address: str) -> dict[str, str]:
    # The test client connects from 127.0.0.1, listed in --trusted-proxies: the server
    # takes the client's address from X-Forwarded-For, as behind a reverse proxy.
    return {"X-Forwarded-For": address}


async def _turn(client: Any, headers: dict[str, str], text: str) -> None:
    body = {"conversation_id": "same", "messages": [{"role": "user", "content": text}]}
    resp = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert resp.status == 200, await resp.text()


async def test_anonymous_clients_are_scoped_by_address(make_client: Any) -> None:
    """No API key: two clients that pick the same conversation_id do not share it."""
    memo = Memo()
    client = await make_client(memo, trusted_proxies=["127.0.0.0/8"])
    alice, bob = _from("203.0.113.1"), _from("198.51.100.7")
    await _turn(client, alice, "alice 1")
    await _turn(client, bob, "bob 1")
    assert memo.seen[1]["conversation"] is None  # Bob's is a conversation of his own
    assert [m.text() for m in memo.seen[1]["messages"]] == ["bob 1"]
    await _turn(client, alice, "alice 2")
    assert memo.seen[2]["conversation"] == {"turn": 1}
    assert [m.text() for m in memo.seen[2]["messages"]] == ["alice 1", "turn 1", "alice 2"]
    # The address is the last hop our proxy appended: a client prepending Alice's
    # address in its own X-Forwarded-For header is still Bob.
    await _turn(client, {"X-Forwarded-For": "203.0.113.1, 198.51.100.7"}, "bob 2")
    assert [m.text() for m in memo.seen[3]["messages"]] == ["bob 1", "turn 1", "bob 2"]


async def test_forwarded_for_from_an_untrusted_peer_is_not_an_address(make_client: Any) -> None:
    memo = Memo()
    client = await make_client(memo)  # no trusted proxies: the peer's address counts
    await _turn(client, _from("203.0.113.1"), "one")
    await _turn(client, _from("198.51.100.7"), "two")  # the same peer, 127.0.0.1
    assert [m.text() for m in memo.seen[1]["messages"]] == ["one", "turn 1", "two"]


async def test_keyed_clients_keep_their_key_scope_from_any_address(make_client: Any) -> None:
    memo = Memo()
    client = await make_client(memo, api_key="k-team", trusted_proxies=["127.0.0.0/8"])
    key = {"Authorization": "Bearer k-team"}
    await _turn(client, {**key, **_from("203.0.113.1")}, "office")
    await _turn(client, {**key, **_from("198.51.100.7")}, "home")
    assert memo.seen[1]["conversation"] == {"turn": 1}
    assert [m.text() for m in memo.seen[1]["messages"]] == ["office", "turn 1", "home"]


async def test_anonymous_stored_responses_are_scoped_by_address(make_client: Any) -> None:
    client = await make_client(Scripted(), trusted_proxies=["127.0.0.0/8"])
    alice, bob = _from("203.0.113.1"), _from("198.51.100.7")
    resp = await client.post(
        "/v1/responses", json={"model": "echo-1", "input": "remember 42"}, headers=alice
    )
    assert resp.status == 200, await resp.text()
    rid = (await resp.json())["id"]
    for method, path in (
        ("GET", f"/v1/responses/{rid}"),
        ("GET", f"/v1/responses/{rid}/input_items"),
        ("DELETE", f"/v1/responses/{rid}"),
    ):
        resp = await client.request(method, path, headers=bob)
        assert resp.status == 404, (method, path)
        assert (await resp.json())["error"]["code"] == "response_not_found"
    body = {"model": "echo-1", "input": "what was it?", "previous_response_id": rid}
    assert (await client.post("/v1/responses", json=body, headers=bob)).status == 404
    assert (await client.post("/v1/responses", json=body, headers=alice)).status == 200
    assert (await client.get(f"/v1/responses/{rid}", headers=alice)).status == 200


async def test_a_save_waits_for_a_write_lock_held_elsewhere(tmp_path: Path) -> None:
    """Saves commit on the event loop without waiting; while another process holds the
    write lock they go to the store's thread, which waits for it: the loop keeps
    serving, and the save returns only once its row is committed."""
    path = tmp_path / "c.sqlite3"
    store = SQLiteConversationStore(path, ttl=3600, max_rows=100)
    await store.save("first", "P", {"n": 0})  # opens the file and its connections
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker in the middle of a write
    save = asyncio.ensure_future(store.save("second", "P", {"n": 1}))
    started = time.monotonic()
    await asyncio.sleep(0.2)  # the loop runs on while the save waits
    assert time.monotonic() - started < 2 and not save.done()
    other.execute("COMMIT")
    await asyncio.wait_for(save, 5)
    assert other.execute(
        "SELECT state FROM conversation_state WHERE conversation_id = 'second'"
    ).fetchone() == (b'{"n":1}',)
    await store.save("third", "P", {"n": 2})  # and back on the loop
    assert await store.load("third", "P") == {"n": 2}
    other.close()
    await store.close()


async def test_a_lone_save_is_committed_within_its_await(tmp_path: Path) -> None:
    """The first save of a loop iteration commits at once: when ``await`` returns, no
    other task has run (no round trip through the loop), and the row is in the file."""
    path = tmp_path / "c.sqlite3"
    store = SQLiteConversationStore(path, ttl=3600, max_rows=100)
    await store.save("first", "P", {"n": 0})  # opens the file and its connections
    ran: list[str] = []

    async def other_task() -> None:
        ran.append("other")

    task = asyncio.ensure_future(other_task())
    await store.save_response("r1", {"n": 1})
    assert ran == []  # the save never gave the loop a turn
    other = sqlite3.connect(path)
    assert other.execute("SELECT record FROM stored_response WHERE key = 'r1'").fetchone() == (
        b'{"n":1}',
    )
    other.close()
    # Saves in the same iteration after the first share a commit, and return committed.
    await asyncio.gather(*(store.save_response(f"b{i}", {"n": i}) for i in range(5)))
    assert [await store.load_response(f"b{i}") for i in range(5)] == [{"n": i} for i in range(5)]
    await task
    await store.close()


async def test_the_wal_stays_bounded_under_a_steady_stream_of_saves(tmp_path: Path) -> None:
    """Checkpoints run beside the saves; they must still let the WAL start over. With
    PASSIVE checkpoints alone it never did: 3,000 saves of 1.5 kB left an 80 MB WAL."""
    path = tmp_path / "c.sqlite3"
    store = SQLiteConversationStore(path, ttl=3600, max_rows=100_000)
    record = {"text": "x" * 1500}
    wal = Path(f"{path}-wal")
    biggest = 0
    for i in range(3000):
        await store.save_response(f"r{i}", record)
        if i % 5 == 0:  # a request's worth of other work, now and then
            await asyncio.sleep(0.001)
            biggest = max(biggest, wal.stat().st_size)
    # WAL_RESTART_FRAMES (16 MB) and what is saved while a checkpoint runs (~1 MB here).
    assert biggest < 32 * 2**20, biggest
    assert await store.load_response("r2999") == record
    await store.close()


async def test_a_schema_1_database_is_moved_over_with_its_rows(tmp_path: Path) -> None:
    """A database made by g4f-server before schema 2 (tables clustered on their keys,
    WITHOUT ROWID) keeps its rows, counts and bounds, and an old server can still use it."""
    path = tmp_path / "c.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        CREATE TABLE conversation_state (conversation_id TEXT NOT NULL, provider TEXT NOT NULL,
            state BLOB NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (conversation_id, provider)) WITHOUT ROWID;
        CREATE INDEX conversation_state_updated ON conversation_state (updated_at);
        CREATE TABLE stored_response (key TEXT PRIMARY KEY, record BLOB NOT NULL,
            updated_at REAL NOT NULL) WITHOUT ROWID;
        CREATE INDEX stored_response_updated ON stored_response (updated_at);
        CREATE TABLE row_count (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
        """
    )
    now = time.time()
    for table in ("conversation_state", "stored_response"):
        db.execute(
            f"CREATE TRIGGER {table}_added AFTER INSERT ON {table} "
            f"BEGIN UPDATE row_count SET n = n + 1 WHERE name = '{table}'; END"
        )
        db.execute(f"INSERT INTO row_count VALUES ('{table}', 0)")
    db.executemany(
        "INSERT INTO conversation_state VALUES (?, 'p', ?, ?)",
        [(f"c{i}", f'{{"n":{i}}}'.encode(), now - 10 + i) for i in range(3)],
    )
    db.executemany(
        "INSERT INTO stored_response VALUES (?, ?, ?)",
        [(f"r{i}", f'{{"n":{i}}}'.encode(), now - 10 + i) for i in range(3)],
    )
    db.close()
    store = SQLiteConversationStore(path, ttl=3600, max_rows=4)
    assert [await store.load(f"c{i}", "P") for i in range(3)] == [{"n": i} for i in range(3)]
    assert [await store.load_response(f"r{i}") for i in range(3)] == [{"n": i} for i in range(3)]
    for i in range(3, 5):  # one over the cap: the oldest goes
        await store.save_response(f"r{i}", {"n": i})
    assert await store.load_response("r0") is None
    assert await store.load_response("r4") == {"n": 4}
    await store.close()
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA user_version").fetchone() == (2,)
    tables = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    assert set(tables) == {"conversation_state", "stored_response", "row_count"}
    assert "WITHOUT ROWID" not in tables["stored_response"]
    counts = dict(db.execute("SELECT name, n FROM row_count"))
    assert counts["conversation_state"] == 3 and counts["stored_response"] <= 4
    assert (
        counts["stored_response"]
        == db.execute("SELECT COUNT(*) FROM stored_response").fetchone()[0]
    )
    # What schema 1's code ran (positional rows, an upsert on the key) still works.
    db.execute(
        "INSERT INTO stored_response VALUES ('r9', '{}', ?) ON CONFLICT (key) "
        "DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
        (time.time(),),
    )
    db.close()
    store = SQLiteConversationStore(path, ttl=3600, max_rows=4)
    assert await store.load_response("r9") == {}
    await store.close()
