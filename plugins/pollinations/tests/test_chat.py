"""Chat against the emulator: hosts, bodies, streaming, tools, limits, errors."""

from __future__ import annotations

import base64
import sys
from contextlib import aclosing
from typing import Any

import orjson
import pytest

import g4f_server_pollinations as plugin
from g4f_server import errors, events
from g4f_server.requests import ChatRequest
from g4f_server.testing import chat_events, wait_until
from g4f_server_pollinations import errors as plugin_errors


def req(text: str = "Hi", **fields: Any) -> ChatRequest:
    fields.setdefault("model", "openai")
    return ChatRequest(messages=[{"role": "user", "content": text}], **fields)


async def collect(request: ChatRequest, context: Any) -> list[Any]:
    return [e async for e in chat_events(plugin.chat(request, context))]


def text_of(evs: list[Any]) -> str:
    return "".join(e.text for e in evs if isinstance(e, events.TextDelta))


def finish(evs: list[Any]) -> str:
    assert isinstance(evs[-1], events.Finish)
    return evs[-1].reason


@pytest.mark.parametrize("stream", [False, True])
async def test_anonymous_chat_uses_legacy_host(emulator, ctx, stream: bool) -> None:
    evs = await collect(req("Hello there", stream=stream, temperature=0.5), ctx())
    assert text_of(evs) == "Echo: Hello there"
    assert finish(evs) == "stop"
    assert events.ModelUsed("openai-emu") in evs
    usage = next(e for e in evs if isinstance(e, events.Usage))
    assert usage.total == usage.prompt_tokens + usage.completion_tokens > 0
    seen = emulator.last("chat")
    assert (seen.host, seen.path, seen.bearer) == ("legacy-text", "/openai", None)
    assert seen.json["model"] == "openai" and seen.json["stream"] is stream
    assert seen.json["temperature"] == 0.5
    assert seen.json["messages"] == [{"role": "user", "content": "Hello there"}]
    # gateway-only and gateway fields never reach the legacy host
    for absent in ("max_tokens", "stop", "stream_options", "provider", "api_key", "n"):
        assert absent not in seen.json


@pytest.mark.parametrize("source", ["env", "ctx"])
async def test_keyed_chat_uses_gateway_with_bearer(emulator, ctx, monkeypatch, source) -> None:
    if source == "env":
        monkeypatch.setenv("POLLINATIONS_API_KEY", "sk_test_key")
        context = ctx()
    else:
        monkeypatch.setenv("POLLINATIONS_API_KEY", "sk_wrong")  # the client's key wins
        context = ctx(api_key="sk_test_key")
    evs = await collect(req("Yo", stream=True, max_tokens=50, stop=["zzz"], user="u1"), context)
    assert text_of(evs) == "Echo: Yo"
    seen = emulator.last("chat")
    assert (seen.host, seen.path, seen.bearer) == ("gen", "/v1/chat/completions", "sk_test_key")
    assert seen.json["max_tokens"] == 50 and seen.json["stop"] == ["zzz"]
    assert seen.json["user"] == "u1"
    assert seen.json["stream_options"] == {"include_usage": True}


async def test_foreign_g4f_key_counts_as_anonymous(emulator, ctx) -> None:
    await collect(req(), ctx(api_key="g4f_abc"))
    assert emulator.last("chat").host == "legacy-text"


async def test_extra_fields_forwarded_selectively(emulator, ctx) -> None:
    request = req(seed=7, reasoning_effort="low", logit_bias={"1": 2}, my_private_flag=True)
    await collect(request, ctx())
    body = emulator.last("chat").json
    assert body["seed"] == 7 and body["reasoning_effort"] == "low"
    assert body["logit_bias"] == {"1": 2}
    assert "my_private_flag" not in body


async def test_developer_role_sent_as_system(emulator, ctx) -> None:
    request = ChatRequest(
        model="openai",
        messages=[{"role": "developer", "content": "Be brief"}, {"role": "user", "content": "x"}],
    )
    await collect(request, ctx())
    assert emulator.last("chat").json["messages"][0]["role"] == "system"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(emulator, ctx, stream: bool) -> None:
    request = req("Weather?", tools=[WEATHER_TOOL], tool_choice="auto", seed=1, stream=stream)
    evs = await collect(request, ctx())
    calls = [e for e in evs if isinstance(e, events.ToolCallDelta)]
    assert calls[0].id == "call_emu_1" and calls[0].name == "get_weather"
    assert "".join(c.arguments for c in calls) == '{"city":"Paris"}'
    assert {c.index for c in calls} == {0}
    assert finish(evs) == "tool_calls"
    body = emulator.last("chat").json
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tool_choice"] == "auto"
    assert "seed" not in body  # never with tools
    follow_up = ChatRequest(
        model="openai",
        stream=stream,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_emu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_emu_1", "content": "Sunny, 25C"},
        ],
    )
    evs = await collect(follow_up, ctx())
    assert text_of(evs) == "The tool said: Sunny, 25C"
    sent = emulator.last("chat").json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_emu_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_emu_1", "content": "Sunny, 25C"}


@pytest.mark.parametrize("kind", ["json_object", "json_schema"])
async def test_response_format_forwarded(emulator, ctx, kind: str) -> None:
    fmt: dict[str, Any] = {"type": kind}
    if kind == "json_schema":
        fmt["json_schema"] = {"name": "a", "schema": {"type": "object"}}
    evs = await collect(req("json please", response_format=fmt), ctx())
    assert text_of(evs) == '{"answer": 42}'
    assert emulator.last("chat").json["response_format"] == fmt


async def test_vision_parts_passed_through(emulator, ctx) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    request = ChatRequest(
        model="openai",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": data_uri}},
                ],
            }
        ],
    )
    evs = await collect(request, ctx())
    assert text_of(evs) == "I see 2 image(s): url, data"
    parts = emulator.last("chat").json["messages"][0]["content"]
    assert parts[2]["image_url"]["url"] == data_uri


async def test_audio_input_part(emulator, ctx, emu_mod) -> None:
    audio = base64.b64encode(emu_mod.wav_bytes()).decode()
    request = ChatRequest(
        model="openai-audio",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is said?"},
                    {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
                ],
            }
        ],
    )
    assert text_of(await collect(request, ctx())) == "hello world"
    part = emulator.last("chat").json["messages"][0]["content"][1]
    assert part["input_audio"]["format"] == "wav"


async def test_audio_output_becomes_media(emulator, ctx, emu_mod) -> None:
    request = req("say hi", model="openai-audio", modalities=["text", "audio"], stream=True)
    evs = await collect(request, ctx())
    media = next(e for e in evs if isinstance(e, events.Media))
    assert media.kind == "audio" and media.data == emu_mod.FAKE_MP3
    assert media.mime_type == "audio/mpeg"
    assert text_of(evs) == "Spoken: say hi"
    body = emulator.last("chat").json
    assert body["stream"] is False  # audio is one blob
    assert body["audio"] == {"voice": "alloy", "format": "mp3"}


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_events(emulator, ctx, stream: bool) -> None:
    evs = await collect(req("why", model="deepseek-reasoning", stream=stream), ctx())
    reasoning = "".join(e.text for e in evs if isinstance(e, events.ReasoningDelta))
    assert reasoning == "Let me think about it. "
    assert text_of(evs) == "Echo: why"
    first_reasoning = next(i for i, e in enumerate(evs) if isinstance(e, events.ReasoningDelta))
    first_text = next(i for i, e in enumerate(evs) if isinstance(e, events.TextDelta))
    assert first_reasoning < first_text


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_applied_on_legacy(emulator, ctx, stream: bool) -> None:
    evs = await collect(req("alpha beta STOP gamma", stop=["STOP", "never"], stream=stream), ctx())
    assert text_of(evs) == "Echo: alpha beta "
    assert finish(evs) == "stop"


@pytest.mark.parametrize("stream", [False, True])
async def test_max_tokens_applied_on_legacy(emulator, ctx, stream: bool) -> None:
    long_text = "word " * 100
    evs = await collect(req(long_text, max_tokens=5, stream=stream), ctx())
    assert len(text_of(evs)) == 20  # our estimate: 4 characters a token
    assert finish(evs) == "length"


async def test_short_answer_not_cut_by_max_tokens(emulator, ctx) -> None:
    evs = await collect(req("ok", max_tokens=100, stream=True), ctx())
    assert text_of(evs) == "Echo: ok" and finish(evs) == "stop"


async def test_plain_text_answer(emulator, ctx) -> None:
    emulator.fail("chat", "text_plain", times=1)
    assert text_of(await collect(req("plain"), ctx())) == "Echo: plain"


@pytest.mark.parametrize("stream", [False, True])
async def test_deprecation_notice_is_an_error_before_any_event(emulator, ctx, stream) -> None:
    emulator.fail("chat", "notice", times=1)
    agen = plugin.chat(req("hi", stream=stream), ctx())
    with pytest.raises(errors.ProviderError, match="service notice") as info:
        await agen.__anext__()  # raised before the first event: the router can fail over
    assert "POLLINATIONS_API_KEY" in info.value.message


async def test_error_chunk_in_stream(emulator, ctx) -> None:
    emulator.fail("chat", "error_chunk", times=1)
    got: list[Any] = []
    with pytest.raises(errors.ProviderError, match="upstream model crashed"):
        async for event in chat_events(plugin.chat(req("x" * 200, stream=True), ctx())):
            got.append(event)
    assert got == []  # the first chunk was still held back, so the router may fail over


@pytest.mark.parametrize(
    ("status", "error", "fragment"),
    [
        (400, errors.InvalidRequestError, "400"),
        (401, errors.ProviderAuthError, "POLLINATIONS_API_KEY"),
        (402, errors.ProviderPaymentError, "enter.pollinations.ai"),
        (403, errors.ProviderPaymentError, "Pollen"),
        (500, errors.ProviderError, "500"),
        (502, errors.ProviderError, "502"),
        (504, errors.ProviderTimeoutError, "504"),
    ],
)
@pytest.mark.parametrize("keyed", [False, True])
async def test_status_mapping(emulator, ctx, status, error, fragment, keyed) -> None:
    emulator.fail("chat", status, times=1)
    context = ctx(api_key="sk_test_key") if keyed else ctx()
    with pytest.raises(error) as info:
        await collect(req(stream=True), context)
    assert fragment in info.value.message
    assert type(info.value) is error


async def test_rate_limit_passes_retry_after(emulator, ctx) -> None:
    emulator.fail("chat", 429, times=1, retry_after="17")
    with pytest.raises(errors.ProviderRateLimitError) as info:
        await collect(req(), ctx())
    assert info.value.retry_after == 17
    assert info.value.headers["Retry-After"] == "17"


async def test_403_tier_and_cloudflare(emulator, ctx) -> None:
    emulator.fail("chat", 403, times=1, message="Model requires flower tier")
    with pytest.raises(errors.ProviderAuthError, match="tier"):
        await collect(req(), ctx())
    emulator.fail("chat", "cloudflare", times=1)
    with pytest.raises(errors.ProviderError, match="Cloudflare"):
        await collect(req(), ctx())


async def test_bad_key_is_auth_error(emulator, ctx) -> None:
    with pytest.raises(errors.ProviderAuthError, match="key was rejected"):
        await collect(req(), ctx(api_key="sk_bad"))


# A stalled chat call is the kernel's to cut (no socket timer of its own): test_e2e.py,
# test_a_stalled_upstream_is_the_kernels_504_in_time. Calls the kernel does not watch
# still time out by themselves: test_images.py, test_models.py.


async def test_unreachable_is_provider_error(ctx, monkeypatch) -> None:
    monkeypatch.setenv("POLLINATIONS_TEXT_URL", "http://127.0.0.1:9")
    with pytest.raises(errors.ProviderError, match="Cannot reach"):
        await collect(req(), ctx())


async def test_anonymous_concurrency_limit(emulator, ctx, monkeypatch) -> None:
    import asyncio

    monkeypatch.setenv("POLLINATIONS_QUEUE_TIMEOUT", "0.2")
    emulator.stall_seconds = 1
    emulator.fail("chat", "stall", times=1)
    context = ctx()
    first = asyncio.create_task(collect(req(), context))
    await wait_until(lambda: len(emulator.seen("chat")) == 1, what="first call upstream")
    with pytest.raises(errors.ProviderRateLimitError, match="queued"):
        await collect(req(), context)  # the only anonymous slot is taken
    assert text_of(await first) == "Echo: Hi"
    # keyed calls do not queue behind anonymous ones
    emulator.fail("chat", "stall", times=1)
    blocker = asyncio.create_task(collect(req(), context))
    await wait_until(lambda: len(emulator.seen("chat")) == 2, what="blocker upstream")
    assert text_of(await collect(req(), ctx(api_key="sk_test_key"))) == "Echo: Hi"
    await blocker


# --- hold-back of the legacy notice, and the stream reader ------------------------------


@pytest.mark.parametrize("keyed", [True, False])
async def test_first_text_not_held_back(emulator, ctx, keyed: bool) -> None:
    """The first text goes out while the upstream still holds the rest of the answer:
    the gateway host never sends the notice, and on the legacy host "Echo:" cannot be
    its opening."""
    emulator.stall_seconds = 10  # only bounds a failure: then the rest comes unasked
    emulator.fail("chat", "gated", times=1)
    context = ctx(api_key="sk_test_key") if keyed else ctx()
    first: list[Any] = []
    async with aclosing(plugin.chat(req("Hello there", stream=True), context)) as stream:
        answer = chat_events(stream)
        async for event in answer:
            first.append(event)
            if isinstance(event, events.TextDelta):
                break
        assert first == [events.ModelUsed("openai-emu"), events.TextDelta("Echo:")]
        assert emulator.content_chunks_sent == 1  # the second chunk waits for our signal
        emulator.proceed.set()
        rest = [event async for event in answer]
    assert emulator.content_chunks_sent > 1
    assert text_of(first + rest) == "Echo: Hello there"
    assert finish(rest) == "stop"


chat_module = sys.modules["g4f_server_pollinations.chat"]


def sse(content: str, **extra: Any) -> bytes:
    chunk = {"model": "m", "choices": [{"index": 0, "delta": {"content": content}}], **extra}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def test_notice_detected_across_reads(emu_mod) -> None:
    answer = chat_module._Answer(req(stream=True), keyed=False)
    notice = emu_mod.NOTICE
    with pytest.raises(errors.ProviderError, match="service notice"):
        for i in range(0, len(notice), 3):
            assert answer.feed(sse(notice[i : i + 3])) == []  # nothing out before the verdict


@pytest.mark.parametrize(
    ("pieces", "released_at"),
    [
        (["Hello", " world"], 0),
        (["⚠️", " **", "Hi"], 2),  # decoration only, then a word the notice does not open with
        (["Im", "port", "ant: read this"], 2),  # like the opening until ":"
        (["The", " Pollinations", " team"], 2),
        (["⚠️ **", "\n\n", "ok"], 2),
        (["*" * 40, "*" * 30], 1),  # the window is full
    ],
)
def test_legacy_text_released_once_it_cannot_be_the_notice(pieces, released_at) -> None:
    answer = chat_module._Answer(req(stream=True), keyed=False)
    for i, piece in enumerate(pieces):
        out = list(answer.feed(sse(piece)))
        if i < released_at:
            assert out == [], f"released too early, at {piece!r}"
        elif i == released_at:
            assert out[0] == events.ModelUsed("m")
            assert "".join(e.text for e in out[1:]) == "".join(pieces[: i + 1])
        else:
            assert out == [events.TextDelta(piece)]
    assert list(answer.close()) == [events.Finish("stop")]


def test_keyed_answer_is_never_held(emu_mod) -> None:
    answer = chat_module._Answer(req(stream=True), keyed=True)
    opening = emu_mod.NOTICE[:5]
    assert list(answer.feed(sse(opening))) == [events.ModelUsed("m"), events.TextDelta(opening)]


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("", None),
        ("⚠️ **", None),
        ("⚠️ **IMPORTANT NOT", None),
        ("⚠️ **IMPORTANT NOTICE**", True),
        ("Please migrate to our new service at https://enter.pollinations.ai", True),
        ("NOTE: The Pollinations legacy text API", None),
        ("I", None),
        ("I think", False),
        ("Echo", False),
        ("```python", False),
        ("Important\nnotice", False),  # a first line that is not the notice
        ("-" * 64, False),
    ],
)
def test_notice_verdict(text: str, verdict: bool | None) -> None:
    assert plugin_errors.notice_verdict(text) is verdict


def test_notice_verdict_holds_every_prefix_of_the_notice(emu_mod) -> None:
    verdicts = [plugin_errors.notice_verdict(emu_mod.NOTICE[:n]) for n in range(1, 65)]
    assert False not in verdicts
    assert verdicts[-1] is True


async def test_stream_lines_split_anywhere() -> None:
    body = b": keep-alive\r\n\r\n" + sse("Hello ") + sse("world", usage=None)
    body += b'data: {"choices":[{"delta":{},"finish_reason":"length"}]}\n\ndata: [DONE]\n\n'
    for cut in range(1, len(body)):
        answer = chat_module._Answer(req(stream=True), keyed=True)
        got = [*answer.feed(body[:cut]), *answer.feed(body[cut:])]
        assert not answer.lines.partial and answer.done
        got += answer.close()
        assert got == [
            events.ModelUsed("m"),
            events.TextDelta("Hello "),
            events.TextDelta("world"),
            events.Finish("length"),
        ], cut


def test_stream_without_final_newline() -> None:
    answer = chat_module._Answer(req(stream=True), keyed=True)
    assert list(answer.feed(sse("a") + sse("b").rstrip())) == [
        events.ModelUsed("m"),
        events.TextDelta("a"),
    ]
    assert list(answer.close()) == [events.TextDelta("b"), events.Finish("stop")]


async def test_events_of_one_read_come_as_one_list(emulator, ctx) -> None:
    """What one network read held is yielded as one list: the gateway writes it to the
    client in one piece instead of one write per chunk."""
    emulator.one_write = True
    request = req("one two three four five six", stream=True)
    items = [item async for item in plugin.chat(request, ctx(api_key="sk_test_key"))]
    assert all(isinstance(item, list) and item for item in items)
    texts = [sum(isinstance(e, events.TextDelta) for e in item) for item in items]
    assert max(texts) >= 5  # the content chunks of the answer, parsed from one read
    flat = [event for item in items for event in item]
    assert text_of(flat) == "Echo: one two three four five six"
    assert finish(flat) == "stop"


@pytest.mark.parametrize("stream", [False, True])
async def test_the_last_read_and_the_finish_come_as_one_list(emulator, ctx, stream) -> None:
    """The events of the read that ends the answer (a whole one, or a stream's through
    [DONE]) go out together with the Finish: one write to the client instead of two."""
    emulator.one_write = True
    request = req("one two three", stream=stream)
    items = [item async for item in plugin.chat(request, ctx(api_key="sk_test_key"))]
    assert len(items) == 1
    assert text_of(items[0]) == "Echo: one two three"
    assert isinstance(items[0][-2], events.Usage)
    assert finish(items[0]) == "stop"


@pytest.mark.parametrize("mode", ["no_events", "only_done"])
@pytest.mark.parametrize("keyed", [False, True])
async def test_event_stream_without_events_is_an_upstream_error(
    emulator, ctx, mode: str, keyed: bool
) -> None:
    emulator.fail("chat", mode, times=1)
    context = ctx(api_key="sk_test_key") if keyed else ctx()
    with pytest.raises(errors.ProviderError, match="no events") as info:
        await collect(req(stream=True), context)
    assert info.value.status == 502


@pytest.mark.parametrize("stream", [False, True])
async def test_html_page_with_200_is_an_upstream_error(emulator, ctx, stream: bool) -> None:
    emulator.fail("chat", "html", times=1)
    with pytest.raises(errors.ProviderError, match="web page") as info:
        await collect(req(stream=stream), ctx())
    assert info.value.status == 502 and "Service Unavailable" in info.value.message


async def test_cloudflare_challenge_is_named_from_the_headers(emulator, ctx) -> None:
    for context in (ctx(), ctx(api_key="sk_test_key")):
        emulator.fail("chat", "cf_challenge", times=1)
        with pytest.raises(errors.ProviderError, match="Cloudflare challenge") as info:
            await collect(req(), context)
        assert type(info.value) is errors.ProviderError  # not an auth error: a key won't help
        assert "tier" not in info.value.message


async def test_anonymous_402_does_not_talk_of_an_account(emulator, ctx) -> None:
    emulator.fail("chat", 402, times=1, message="Payment Required")
    with pytest.raises(errors.ProviderPaymentError) as info:
        await collect(req(), ctx())
    assert "account" not in info.value.message and "anonymous" in info.value.message
    emulator.fail("chat", 402, times=1)
    with pytest.raises(errors.ProviderPaymentError, match="no Pollen left"):
        await collect(req(), ctx(api_key="sk_test_key"))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("keyed", [False, True])
async def test_leading_blank_lines_are_trimmed(emulator, ctx, stream: bool, keyed: bool) -> None:
    emulator.fail("chat", "leading_blank", times=1)
    context = ctx(api_key="sk_test_key") if keyed else ctx()
    assert text_of(await collect(req("Hi", stream=stream), context)) == "  Echo: Hi"


async def test_anonymous_chats_are_spaced_for_the_host_limit(emulator, ctx, monkeypatch) -> None:
    emulator.min_gap["legacy-text"] = 0.2
    monkeypatch.setenv("POLLINATIONS_ANON_TEXT_INTERVAL", "0.5")
    context = ctx()
    for text in ("one", "two"):
        assert text_of(await collect(req(text), context)) == f"Echo: {text}"
    assert emulator.rate_limited == []
    await collect(req("keyed"), ctx(api_key="sk_test_key"))  # the gateway: not spaced


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_model_and_usage_headers_are_passed_on(emulator, ctx, stream) -> None:
    context = ctx()
    await collect(req(stream=stream), context)
    headers = context.response_headers
    assert headers["x-model-used"] == "openai-emu"
    if not stream:
        assert headers["x-usage-total-tokens"] == "4"
        assert headers["x-usage-prompt-text-tokens"] == "1"


async def test_usage_from_the_headers_when_the_body_has_none(emulator, ctx) -> None:
    emulator.fail("chat", "text_plain", times=1)
    evs = await collect(req("Hello there"), ctx())
    assert text_of(evs) == "Echo: Hello there"
    usage = next(e for e in evs if isinstance(e, events.Usage))
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total) == (2, 4, 6)
    assert events.ModelUsed("openai-emu") in evs


async def test_audio_answer_that_is_not_audio_is_an_error(emulator, ctx) -> None:
    emulator.fail("chat", "html_audio", times=1)
    request = req("say hi", model="openai-audio", modalities=["text", "audio"])
    with pytest.raises(errors.ProviderError, match="not audio"):
        await collect(request, ctx())


@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("body", [b"data:[DONE]\n\n", b"data:\n\n: ping\n\n", b"data: [DONE]"])
def test_done_or_blank_lines_alone_are_no_events(keyed: bool, body: bytes) -> None:
    answer = chat_module._Answer(req(stream=True), keyed=keyed)
    assert answer.feed(body) == []
    with pytest.raises(errors.ProviderError, match="no events"):
        answer.close(streamed=True)


@pytest.mark.parametrize("pause", [0.0, 0.05])
async def test_a_json_answer_read_whole_or_as_it_arrives(aiohttp_server, ctx, monkeypatch, pause):
    """A JSON answer that came with its headers is taken as it is; one whose body is still
    arriving is read to its end: the same events either way."""
    import asyncio

    from aiohttp import web

    body = (
        b'{"model": "openai", "choices": [{"index": 0, "message": {"role": "assistant", '
        b'"content": "Hello there"}, "finish_reason": "stop"}], "usage": '
        b'{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}'
    )

    async def completions(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[:40])
        await asyncio.sleep(pause)
        await resp.write(body[40:])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/gen/v1/chat/completions", completions)
    server = await aiohttp_server(app, host="127.0.0.1")
    monkeypatch.setenv("POLLINATIONS_GEN_URL", str(server.make_url("/gen")))
    items = [item async for item in plugin.chat(req(), ctx(api_key="sk_test_key"))]
    assert items == [
        [
            events.ModelUsed("openai"),
            events.TextDelta("Hello there"),
            events.Usage(3, 2, 5),
            events.Finish("stop"),
        ]
    ]


async def test_upstream_headers_pass_on_exactly_the_x_model_and_x_usage_ones(ctx) -> None:
    """The raw pairs are filtered on their first byte: every name that starts with a
    passed prefix, in any case, is passed on, and no other (names whose first byte only
    differs from "x" in another bit, or that start with "x" but name something else)."""
    raw = (
        (b"Content-Type", b"text/event-stream"),
        (b"X-Model-Used", b"openai-large"),
        (b"x-usage-prompt-text-tokens", b"5"),
        (b"X-USAGE-COMPLETION-TEXT-TOKENS", b"7"),
        (b"x-usage-total-tokens", b"12"),
        (b"X-Request-Id", b"abc"),
        (b"Xylophone", b"1"),
        (b"8-usage-prompt-text-tokens", b"9"),  # 0x38: the 0x20 bit set, not "x"
        (b"Y-Model-Used", b"no"),
        (b"X", b"short"),
    )
    answer = chat_module._Answer(req(stream=True), keyed=True)
    context = ctx()
    answer.upstream_headers(raw, context)
    assert context.response_headers == {
        "x-model-used": "openai-large",
        "x-usage-prompt-text-tokens": "5",
        "x-usage-completion-text-tokens": "7",
        "x-usage-total-tokens": "12",
    }
    assert answer.carry == events.ModelUsed("openai-large") and answer.model_seen
    assert answer.header_usage == events.Usage(5, 7, 12)


def test_the_upstream_body_reads_the_fields_as_the_request_gives_them() -> None:
    """build_body reads the request's fields from its dict: what the properties give."""
    for fields in (
        {},
        {"max_tokens": 5},
        {"max_completion_tokens": 7, "max_tokens": 5},
        {"max_completion_tokens": 7},
        {"stop": ["x", "y"], "user": "u-1"},
        {"stop": "end"},
        {"stream": False},
    ):
        request = req(**{"stream": True, **fields})
        for keyed in (True, False):
            body = chat_module.build_body(request, keyed=keyed)
            assert body["model"] == request.model and body["stream"] == request.stream
            if keyed:
                assert body.get("max_tokens") == request.token_limit
                assert body.get("stop") == (request.stop or None)
                assert body.get("user") == request.user
            else:
                assert "max_tokens" not in body and "stop" not in body and "user" not in body
