"""A finished answer leaves no reference cycles behind, in any protocol: each request's
objects go when its last reference does, not at the garbage collector's next pass (a
cycle through a stored response's callback once cost ~50 us a request in collections)."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from tests.fake_providers import Scripted

CHAT = {"model": "echo-1", "messages": [{"role": "user", "content": "hello there"}]}
RESPONSES = {"model": "echo-1", "input": "hello there"}
MESSAGES = {
    "model": "echo-1",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hello there"}],
}
CASES = {
    "chat": ("/v1/chat/completions", CHAT),
    "chat stream": ("/v1/chat/completions", {**CHAT, "stream": True}),
    "chat conversation": ("/v1/chat/completions", {**CHAT, "conversation_id": "c-1"}),
    "responses stored": ("/v1/responses", RESPONSES),
    "responses stored stream": ("/v1/responses", {**RESPONSES, "stream": True}),
    "responses store false": ("/v1/responses", {**RESPONSES, "store": False, "stream": True}),
    "messages": ("/v1/messages", MESSAGES),
    "messages stream": ("/v1/messages", {**MESSAGES, "stream": True}),
    "completions": ("/v1/completions", {"model": "echo-1", "prompt": "hello there"}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_finished_answer_leaves_no_cycles(make_client: Any, case: str) -> None:
    path, body = CASES[case]
    client = await make_client(Scripted())

    async def ask() -> None:
        resp = await client.post(path, json=body)
        assert resp.status == 200, await resp.text()
        assert "hello" in await resp.text()

    for _ in range(3):  # first-use imports, caches and connections
        await ask()
    gc.collect()
    gc.disable()
    try:
        base = gc.collect()  # what the test's own machinery leaves: the baseline
        for _ in range(20):
            await ask()
        found = gc.collect()
    finally:
        gc.enable()
    # A cycle per request would be >= 20 groups of objects; allow the client's odd one.
    assert found - base < 20, f"{found} objects in cycles after 20 answers"
