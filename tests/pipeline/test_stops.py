"""``stop`` cut by the kernel (stops.py) through the real app: a provider whose model
ignores stop sequences answers in fixed chunks; the client gets the text up to the first
stop sequence, streamed or not, in every protocol."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from g4f_server import events, hookimpl
from g4f_server.config import AppConfig, ConfigError
from g4f_server.controls import wiring as controls
from g4f_server.provider import ModelInfo, ProviderContext, ProviderInfo
from g4f_server.requests import ChatRequest

CHAT = "/v1/chat/completions"
# "STOP" is split across the 2nd and 3rd chunks; "<END>" across three chunks.
CHUNKS = ["Hello wor", "ld. ST", "OP and <", "EN", "D> more"]


@dataclass(eq=False)  # identity, as pluggy compares plugins with ==
class Ignorer:
    """Answers ``chunks`` whatever the request's ``stop``; records what it was sent and
    how far its generator got (closed = the kernel stopped reading)."""

    chunks: list[str] = field(default_factory=lambda: list(CHUNKS))
    name: str = "Ignorer"
    stops: list[list[str] | None] = field(default_factory=list)
    yielded: int = 0
    closed: bool = False

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name=self.name, default_model="deaf")

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        # "honest" says it honours stop sequences (it does not: the kernel must trust it).
        return [ModelInfo("deaf"), ModelInfo("honest", frozenset({"chat", "stop"}))]

    @hookimpl
    async def chat(
        self, request: ChatRequest, ctx: ProviderContext
    ) -> AsyncIterator[events.ChatEvent]:
        self.stops.append(request.stop)
        try:
            for chunk in self.chunks:
                self.yielded += 1
                yield events.TextDelta(chunk)
            yield events.Usage(prompt_tokens=5, completion_tokens=9)
            yield events.Finish("stop")
        finally:
            self.closed = True


def sse(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def body(stop: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "deaf", "messages": [{"role": "user", "content": "hi"}], "stop": stop, **extra}


async def test_chat_cut_at_a_stop_split_across_chunks(make_client: Any) -> None:
    provider = Ignorer()
    client = await make_client(provider)
    resp = await client.post(CHAT, json=body("STOP"))
    assert resp.status == 200
    assert resp.headers["X-G4F-Emulated"] == "stop"
    answer = await resp.json()
    assert answer["choices"][0]["message"]["content"] == "Hello world. "
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert provider.stops == [["STOP"]]  # still sent upstream
    # The kernel stopped reading at the stop: the chunks after it were never asked for.
    assert provider.yielded == 3 and provider.closed


async def test_streamed_chat_cut_and_nothing_of_the_stop_sent(make_client: Any) -> None:
    provider = Ignorer()
    client = await make_client(provider)
    resp = await client.post(CHAT, json=body(["<END>", "nothing"], stream=True))
    assert resp.status == 200
    assert resp.headers["X-G4F-Emulated"] == "stop"
    text = await resp.text()
    assert text.rstrip().endswith("data: [DONE]")
    chunks = sse(text)
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    sent = "".join(d for d in deltas if d)
    assert sent == "Hello world. STOP and "
    assert "<" not in sent  # the start of the stop was held back, never sent
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert provider.yielded == 5 and provider.closed


async def test_earliest_stop_wins_and_a_missing_stop_cuts_nothing(make_client: Any) -> None:
    client = await make_client(Ignorer())
    answer = await (await client.post(CHAT, json=body(["<END>", ". "]))).json()
    assert answer["choices"][0]["message"]["content"] == "Hello world"
    resp = await client.post(CHAT, json=body(["never there"], stream=True))
    sent = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in sse(await resp.text())
        if c["choices"]
    )
    assert sent == "".join(CHUNKS)  # the held-back tail is sent at the end
    assert resp.headers["X-G4F-Emulated"] == "stop"


async def test_no_cut_without_stop_or_for_a_model_that_honours_it(make_client: Any) -> None:
    client = await make_client(Ignorer())
    resp = await client.post(CHAT, json=body(None))
    assert "X-G4F-Emulated" not in resp.headers
    assert (await resp.json())["choices"][0]["message"]["content"] == "".join(CHUNKS)
    resp = await client.post(CHAT, json={**body("STOP"), "model": "honest"})
    assert "X-G4F-Emulated" not in resp.headers
    assert (await resp.json())["choices"][0]["message"]["content"] == "".join(CHUNKS)


async def test_messages_report_the_stop_sequence(make_client: Any) -> None:
    client = await make_client(Ignorer())
    request = {
        "model": "deaf",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "stop_sequences": ["STOP"],
    }
    answer = await (await client.post("/v1/messages", json=request)).json()
    assert answer["content"] == [{"type": "text", "text": "Hello world. "}]
    assert answer["stop_reason"] == "stop_sequence"
    assert answer["stop_sequence"] == "STOP"
    resp = await client.post("/v1/messages", json={**request, "stream": True})
    assert resp.headers["X-G4F-Emulated"] == "stop"
    events_ = [
        json.loads(line[6:]) for line in (await resp.text()).splitlines() if line[:6] == "data: "
    ]
    text = "".join(e["delta"]["text"] for e in events_ if e["type"] == "content_block_delta")
    assert text == "Hello world. "
    delta = next(e for e in events_ if e["type"] == "message_delta")["delta"]
    assert delta == {"stop_reason": "stop_sequence", "stop_sequence": "STOP"}
    assert events_[-1]["type"] == "message_stop"
    # Without a stop sequence found: the usual end_turn, no sequence named.
    plain = await (
        await client.post("/v1/messages", json={**request, "stop_sequences": ["zzz"]})
    ).json()
    assert plain["stop_reason"] == "end_turn" and plain["stop_sequence"] is None


async def test_completions_are_cut_too(make_client: Any) -> None:
    client = await make_client(Ignorer())
    request = {"model": "deaf", "prompt": "hi", "stop": ["STOP"]}
    answer = await (await client.post("/v1/completions", json=request)).json()
    assert answer["choices"][0]["text"] == "Hello world. "
    assert answer["choices"][0]["finish_reason"] == "stop"
    resp = await client.post("/v1/completions", json={**request, "stream": True})
    chunks = sse(await resp.text())
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "Hello world. "
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


async def test_a_stop_at_the_very_start_gives_an_empty_answer(make_client: Any) -> None:
    client = await make_client(Ignorer())
    answer = await (await client.post(CHAT, json=body("Hello"))).json()
    assert answer["choices"][0]["message"]["content"] == ""
    assert answer["choices"][0]["finish_reason"] == "stop"


async def test_a_cached_cut_answer_replays_its_stop_sequence(make_client: Any) -> None:
    provider = Ignorer()
    client = await make_client(provider, cache_ttl=60)
    request = {
        "model": "deaf",
        "max_tokens": 100,
        "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}],
        "stop_sequences": ["STOP"],
    }
    first = await client.post("/v1/messages", json=request)
    assert first.headers["X-G4F-Cache"] == "miss"
    again = await client.post("/v1/messages", json=request)
    assert again.headers["X-G4F-Cache"] == "hit"
    answer = await again.json()
    assert answer["content"] == [{"type": "text", "text": "Hello world. "}]
    assert answer["stop_reason"] == "stop_sequence" and answer["stop_sequence"] == "STOP"
    assert len(provider.stops) == 1


def test_emulate_stop_is_refused_as_always_on() -> None:
    with pytest.raises(ConfigError, match="always cut by the kernel"):
        controls.check(AppConfig(emulate=["tools", "stop"]))


@pytest.mark.parametrize(
    ("chunks", "stop", "expected"),
    [
        (["xa", "a", "ab", "tail"], "aab", "xa"),  # overlapping starts: "aa" held, then cut
        (["xa", "a", "c"], "aab", "xaac"),  # held, then not a stop after all
        (["one", "STOP", "two"], "STOP", "one"),  # the stop is a whole chunk
        (["S", "T", "O", "P!"], "STOP", ""),  # the stop spread over four chunks
        (["a-", "-b", "c"], "--", "a"),  # a regex character in the stop
        (["x]", "^y"], "]^", "x"),
    ],
)
async def test_streamed_cuts(make_client: Any, chunks: list[str], stop: str, expected: str) -> None:
    client = await make_client(Ignorer(chunks=chunks))
    resp = await client.post(CHAT, json=body([stop], stream=True))
    chunks_out = sse(await resp.text())
    sent = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks_out if c["choices"]
    )
    assert sent == expected
    assert [c["choices"][0]["finish_reason"] for c in chunks_out if c["choices"]][-1] == "stop"
