"""The plugin's hooks called directly against the emulator."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

import g4f_server_copilot as plugin
from g4f_server.errors import (
    InvalidRequestError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)
from g4f_server.events import (
    Citation,
    ConversationState,
    Finish,
    Media,
    ReasoningDelta,
    TextDelta,
)
from g4f_server.provider import ImageRequest
from g4f_server.requests import ChatRequest
from g4f_server.testing import wait_until

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
DATA_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()


def request(*messages: Any, model: str = "Copilot") -> ChatRequest:
    msgs = [m if isinstance(m, dict) else {"role": "user", "content": m} for m in messages]
    return ChatRequest(model=model, messages=msgs)


def logged_in(domain: str) -> dict[str, str]:
    # What the kernel's cookie store gives for an uploaded HAR of a logged-in session.
    if domain != "copilot.microsoft.com":
        return {}
    return {"__g4f_access_token": "good-token", "__g4f_identity_type": "msa", "MUID": "abc"}


async def collect(req: ChatRequest, ctx: Any) -> list[Any]:
    return [event async for event in plugin.chat(request=req, ctx=ctx)]


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def state_of(events: list[Any]) -> dict[str, Any]:
    return next(e.data for e in events if isinstance(e, ConversationState))


# --- description -------------------------------------------------------------------------


async def test_info_and_models(provider_context) -> None:
    info = plugin.provider_info()
    assert (info.name, info.auth, info.default_model) == ("Copilot", "optional", "Copilot")
    assert "copilot.microsoft.com" in info.cookie_domains
    models = {m.id: m for m in await plugin.list_models(ctx=provider_context())}
    assert set(models) == {"Copilot", "Think Deeper", "Smart (GPT-5)", "Study", "Search"}
    assert all("tools" not in m.capabilities for m in models.values())
    assert "reasoning" in models["Think Deeper"].capabilities
    assert "image" in models["Copilot"].capabilities
    assert "gpt-5" in models["Smart (GPT-5)"].aliases


# --- chat --------------------------------------------------------------------------------


async def test_anonymous_chat_uses_app_flavour(copilot, provider_context) -> None:
    events = await collect(request("Hi"), provider_context())
    assert text_of(events) == "Hello from Copilot (turn 1)."
    assert isinstance(events[-1], Finish)
    assert state_of(events)["conversation_id"] == "conv-0"
    start = copilot.starts[0]
    assert start["headers"]["User-Agent"].startswith("CopilotNative/")
    assert "Cookie" not in start["headers"] and "Authorization" not in start["headers"]
    socket = copilot.sockets[0]
    assert socket["query"]["clientSessionId"] and "accessToken" not in socket["query"]
    assert "__Host-copilot-anon=anon-0" in socket["headers"]["Cookie"]
    assert [f["event"] for f in socket["frames"]] == ["setOptions", "reportLocalConsents", "send"]
    assert copilot.last_send["mode"] == "chat"
    assert copilot.texts("conv-0") == ["Hi"]
    await wait_until(lambda: copilot.open_sockets == 0, what="socket closed")


async def test_reasoning_model_streams_chain_of_thought(copilot, provider_context) -> None:
    events = await collect(request("Why?", model="Think Deeper"), provider_context())
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert reasoning == "Let me think. Done thinking."
    first_reasoning = next(i for i, e in enumerate(events) if isinstance(e, ReasoningDelta))
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert first_reasoning < first_text
    assert copilot.last_send["mode"] == "reasoning"


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        ("Smart (GPT-5)", "smart"),
        ("Study", "study"),
        ("Search", "search"),
        ("o3-mini", "reasoning"),
    ],
)
async def test_model_selects_mode(copilot, provider_context, model: str, mode: str) -> None:
    await collect(request("Hi", model=model), provider_context())
    assert copilot.last_send["mode"] == mode


async def test_new_conversation_folds_history(copilot, provider_context) -> None:
    req = request(
        {"role": "system", "content": "Be brief."},
        "My name is Ada.",
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        "What is my name?",
    )
    await collect(req, provider_context())
    sent = copilot.texts("conv-0")[0]
    assert "Be brief." in sent
    assert "User: My name is Ada." in sent and "Assistant: Nice to meet you, Ada." in sent
    assert sent.rstrip().endswith("What is my name?")


async def test_continuation_sends_only_the_new_turn(copilot, provider_context) -> None:
    first = await collect(request("My name is Ada."), provider_context(conversation_id="c1"))
    state = state_of(first)
    assert state["flavour"] == "app" and state["session_cookies"]["__Host-copilot-anon"]
    follow_up = request(
        "My name is Ada.",
        {"role": "assistant", "content": text_of(first)},
        "What is my name?",
    )
    second = await collect(follow_up, provider_context(conversation_id="c1", conversation=state))
    assert text_of(second) == "Hello from Copilot (turn 2)."
    assert copilot.texts("conv-0") == ["My name is Ada.", "What is my name?"]
    assert len(copilot.starts) == 1  # no new upstream conversation
    assert state_of(second)["conversation_id"] == "conv-0"


async def test_continuation_of_anonymous_conversation_keeps_its_identity(
    copilot, provider_context
) -> None:
    state = state_of(await collect(request("One"), provider_context()))
    # The user uploads a login later: the anonymous conversation still goes on as before.
    ctx = provider_context(conversation=state, cookies=logged_in)
    await collect(request("Two"), ctx)
    assert copilot.texts("conv-0") == ["One", "Two"]
    assert "accessToken" not in copilot.sockets[-1]["query"]


async def test_citation_and_image_events(copilot, provider_context) -> None:
    events = await collect(request("Please cite and draw: a red fox"), provider_context())
    assert Citation(url="https://example.org/source", title="Source") in events
    media = [e for e in events if isinstance(e, Media)]
    assert len(media) == 1
    assert media[0].kind == "image" and media[0].url.endswith(".png")
    assert media[0].thumbnail_url.endswith("-thumb.png")
    assert media[0].alt == "a red fox"


async def test_replace_text_extending_emits_only_the_new_part(copilot, provider_context) -> None:
    copilot.script.append("replace-extend")
    assert text_of(await collect(request("Hi"), provider_context())) == "Hello world"


async def test_replace_text_rewrite_is_appended(copilot, provider_context) -> None:
    copilot.script.append("replace-rewrite")
    assert text_of(await collect(request("Hi"), provider_context())) == "HeloHello"


async def test_last_message_must_be_from_user(copilot, provider_context) -> None:
    req = request("Hi", {"role": "assistant", "content": "Hello"})
    with pytest.raises(InvalidRequestError):
        await collect(req, provider_context())


async def test_server_without_greeting(copilot, provider_context, monkeypatch) -> None:
    monkeypatch.setenv("COPILOT_CONNECT_TIMEOUT", "0.2")
    copilot.greet = False
    assert text_of(await collect(request("Hi"), provider_context())).startswith("Hello")


# --- vision and login ----------------------------------------------------------------------


def vision_request(url: str = DATA_URI) -> ChatRequest:
    return request(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    )


async def test_vision_without_login_fails_clearly(copilot, provider_context) -> None:
    with pytest.raises(ProviderAuthError, match="vision needs cookies"):
        await collect(vision_request(), provider_context())
    assert copilot.starts == []  # failed before any network call


async def test_vision_with_login_uploads_the_image(copilot, provider_context) -> None:
    events = await collect(vision_request(), provider_context(cookies=logged_in))
    assert text_of(events) == "Hello from Copilot (turn 1, 1 images)."
    assert copilot.uploads == [{"kind": "image", "type": "image/png", "size": len(PNG)}]
    content = copilot.last_send["content"]
    assert content[0]["type"] == "image" and content[0]["url"].startswith(copilot.base)
    assert content[-1] == {"type": "text", "text": "What is this?"}
    socket = copilot.sockets[-1]
    assert socket["query"]["accessToken"] == "good-token"
    assert "MUID=abc" in socket["headers"]["Cookie"]
    assert "__g4f" not in socket["headers"]["Cookie"]  # pseudo-cookies are not sent
    assert socket["query"]["X-UserIdentityType"] == "msa"
    assert socket["headers"]["User-Agent"].startswith("Mozilla/")
    assert copilot.starts[0]["headers"]["Authorization"] == "Bearer good-token"


async def test_vision_with_remote_url_is_passed_through(copilot, provider_context) -> None:
    url = "https://example.org/cat.png"
    await collect(vision_request(url), provider_context(api_key="good-token"))
    assert copilot.uploads == []
    assert copilot.last_send["content"][0] == {"type": "image", "url": url}


async def test_cookie_only_rest_login_keeps_one_identity(copilot, provider_context) -> None:
    # Item 15: REST refuses the Bearer header, the start is redone with cookies alone and
    # thereby as another (anonymous) identity: the socket must present that identity too.
    copilot.rest_rejects_bearer = True
    events = await collect(request("Hi"), provider_context(cookies=logged_in))
    assert text_of(events) == "Hello from Copilot (turn 1)."
    assert ["Authorization" in s["headers"] for s in copilot.starts] == [True, False]
    socket = copilot.sockets[-1]
    assert "accessToken" not in socket["query"]
    assert socket["cookies"]["__Host-copilot-anon"] == "anon-0"
    state = state_of(events)
    again = provider_context(cookies=logged_in, conversation=state)
    assert text_of(await collect(request("Again"), again)) == "Hello from Copilot (turn 2)."
    assert "accessToken" not in copilot.sockets[-1]["query"]
    assert copilot.texts("conv-0") == ["Hi", "Again"] and len(copilot.starts) == 2


async def test_cookie_only_rest_login_cannot_upload_images(copilot, provider_context) -> None:
    copilot.rest_rejects_bearer = True
    with pytest.raises(ProviderAuthError, match="refused the access token"):
        await collect(vision_request(), provider_context(cookies=logged_in))
    assert copilot.sockets == [] and copilot.uploads == []


async def test_invalid_token_is_an_auth_error(copilot, provider_context) -> None:
    with pytest.raises(ProviderAuthError, match="401"):
        await collect(request("Hi"), provider_context(api_key="bad-token"))


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, ProviderAuthError),
        (403, ProviderAuthError),
        (429, ProviderRateLimitError),
        (500, ProviderError),
    ],
)
async def test_session_start_failures(copilot, provider_context, status: int, error) -> None:
    copilot.start_status = status
    with pytest.raises(error) as info:
        await collect(request("Hi"), provider_context())
    assert type(info.value) is error


async def test_error_code_region(copilot, provider_context) -> None:
    copilot.script.append("error:chat-service-unavailable")
    with pytest.raises(ProviderError, match="region") as info:
        await collect(request("Hi"), provider_context())
    assert info.value.code == "copilot_chat_service_unavailable"


async def test_error_code_invalid_event(copilot, provider_context) -> None:
    copilot.script.append("error:invalid-event")
    with pytest.raises(ProviderError, match="invalid-event"):
        await collect(request("Hi"), provider_context())


async def test_error_code_unknown_and_rate_limit(copilot, provider_context) -> None:
    copilot.script.append("error:something-odd")
    with pytest.raises(ProviderError, match="something-odd"):
        await collect(request("Hi"), provider_context())
    copilot.script.append("error:rate-limited")
    with pytest.raises(ProviderRateLimitError):
        await collect(request("Hi"), provider_context())


async def test_challenge_without_method_is_answered(copilot, provider_context) -> None:
    copilot.script.append("challenge")
    events = await collect(request("Hi"), provider_context())
    assert text_of(events) == "Hello from Copilot (turn 1)."
    frames = [f["event"] for f in copilot.sockets[0]["frames"]]
    assert frames[-3:] == ["send", "challengeResponse", "send"]
    response = copilot.sockets[0]["frames"][-2]
    assert response == {"event": "challengeResponse", "token": "", "method": None, "id": "0.4242"}


def clearance(value: str):
    def cookies(domain: str) -> dict[str, str]:
        return {"cf_clearance": value} if domain == "copilot.microsoft.com" else {}

    return cookies


async def test_cloudflare_challenge_with_clearance_is_answered(copilot, provider_context) -> None:
    # Item 16: the socket already carries cf_clearance, so the challenge is answered.
    copilot.script.append("challenge:cloudflare")
    events = await collect(request("Hi"), provider_context(cookies=clearance("cleared")))
    assert text_of(events) == "Hello from Copilot (turn 1)."
    frames = copilot.sockets[0]["frames"]
    assert [f["event"] for f in frames][-3:] == ["send", "challengeResponse", "send"]
    assert frames[-2] == {
        "event": "challengeResponse",
        "token": "",
        "method": "cloudflare",
        "id": "0.4242",
    }


async def test_cloudflare_challenge_without_clearance(copilot, provider_context) -> None:
    copilot.script.append("challenge:cloudflare")
    with pytest.raises(ProviderAuthError, match="cf_clearance"):
        await collect(request("Hi"), provider_context())


async def test_cloudflare_clearance_not_accepted(copilot, provider_context) -> None:
    copilot.script.append("challenge:cloudflare")
    with pytest.raises(ProviderAuthError, match="did not accept"):
        await collect(request("Hi"), provider_context(cookies=clearance("stale")))


async def test_unsolvable_challenge_is_reported(copilot, provider_context) -> None:
    copilot.script.append("challenge:hashcash")
    with pytest.raises(ProviderAuthError, match=r"hashcash.*cannot solve"):
        await collect(request("Hi"), provider_context())
    await wait_until(lambda: copilot.open_sockets == 0, what="socket closed")


async def test_silence_before_answer_times_out(copilot, provider_context) -> None:
    copilot.script.append("silence")
    with pytest.raises(ProviderTimeoutError, match="before answering"):
        await collect(request("Hi"), provider_context())
    await wait_until(lambda: copilot.open_sockets == 0, what="socket closed")


async def test_stall_mid_answer_times_out(copilot, provider_context) -> None:
    copilot.script.append("stall")
    seen: list[Any] = []
    with pytest.raises(ProviderTimeoutError, match="mid-answer"):
        async for event in plugin.chat(request=request("Hi"), ctx=provider_context()):
            seen.append(event)
    assert text_of(seen) == "Partial"


async def test_socket_closed_before_done(copilot, provider_context) -> None:
    copilot.script.append("close")
    with pytest.raises(ProviderError, match="closed the chat socket"):
        await collect(request("Hi"), provider_context())


async def test_unreachable_upstream(provider_context, monkeypatch) -> None:
    monkeypatch.setenv("COPILOT_URL", "http://127.0.0.1:9")
    with pytest.raises(ProviderError, match="unreachable"):
        await collect(request("Hi"), provider_context())


async def test_consumer_stopping_closes_the_socket(copilot, provider_context) -> None:
    copilot.script.append("stall")
    stream = plugin.chat(request=request("Hi"), ctx=provider_context())
    first = await anext(stream)
    assert first == TextDelta("Partial")
    assert copilot.open_sockets == 1
    await stream.aclose()  # what the kernel does when the client disconnects
    for _ in range(50):
        if copilot.open_sockets == 0:
            break
        await asyncio.sleep(0.01)
    assert copilot.open_sockets == 0


# --- images --------------------------------------------------------------------------------


async def test_generate_images(copilot, provider_context) -> None:
    req = ImageRequest(prompt="a lighthouse at dusk", n=2, size="1024x768")
    items = await plugin.generate_images(request=req, ctx=provider_context())
    assert len(items) == 2 and all(i.url.startswith(copilot.base) for i in items)
    assert items[0].revised_prompt == "a lighthouse at dusk"
    assert len(copilot.starts) == 2
    assert "landscape" in copilot.texts("conv-0")[0]


async def test_generate_images_refusal(copilot, provider_context) -> None:
    req = ImageRequest(prompt="something forbidden")
    with pytest.raises(ProviderError, match="without an image: I can't create that image"):
        await plugin.generate_images(request=req, ctx=provider_context())


async def test_shared_cookie_jar_does_not_mix_identities(copilot) -> None:
    """Production's shared session has a real jar; conversations must keep their own identity."""
    import aiohttp
    import structlog

    from g4f_server.provider import ProviderContext

    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: also keep cookies of 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:

        def ctx(**fields: Any) -> ProviderContext:
            return ProviderContext(http=http, log=structlog.get_logger("t"), state={}, **fields)

        first = state_of(await collect(request("A1"), ctx()))
        second = state_of(await collect(request("B1"), ctx()))
        assert first["conversation_id"] != second["conversation_id"]
        await collect(request("A2"), ctx(conversation=first))
        await collect(request("B2"), ctx(conversation=second))
    # Each anonymous session starts clean: nothing of another user's identity goes along.
    assert "Cookie" not in copilot.starts[1]["headers"]
    assert copilot.texts(first["conversation_id"]) == ["A1", "A2"]
    assert copilot.texts(second["conversation_id"]) == ["B1", "B2"]


async def test_auth_status(provider_context) -> None:
    from g4f_server_copilot.auth import status

    assert status(provider_context())["logged_in"] is False
    logged = status(provider_context(cookies=logged_in))
    assert logged["logged_in"] is True and logged["cookies"] == ["MUID"]
    assert "good-token" not in str(logged)


async def test_logged_in_turns_are_limited(copilot, provider_context, monkeypatch) -> None:
    monkeypatch.setenv("COPILOT_MAX_LOGIN_TURNS", "1")
    monkeypatch.setenv("COPILOT_IDLE_TIMEOUT", "10")
    copilot.script.append("stall")
    first = plugin.chat(request=request("One"), ctx=provider_context(cookies=logged_in))
    assert await anext(first) == TextDelta("Partial")
    second = asyncio.create_task(collect(request("Two"), provider_context(cookies=logged_in)))
    await asyncio.sleep(0.2)
    assert not second.done() and copilot.open_sockets == 1  # waiting for the slot
    await first.aclose()
    assert text_of(await asyncio.wait_for(second, 5)).startswith("Hello")
    # Anonymous turns are not limited.
    copilot.script.append("stall")
    anon = plugin.chat(request=request("Three"), ctx=provider_context())
    assert await anext(anon) == TextDelta("Partial")
    assert text_of(await collect(request("Four"), provider_context())).startswith("Hello")
    await anon.aclose()


# --- issue 15: fidelity to the documented upstream -------------------------------------------


async def test_turn_without_text_is_an_upstream_error(copilot, provider_context) -> None:
    # Item 17: "received" then "done" and nothing else is not a successful empty answer.
    copilot.script.append("empty")
    with pytest.raises(ProviderError, match=r"without an answer.*received, done") as info:
        await collect(request("Hi"), provider_context())
    assert info.value.code == "copilot_empty_answer"


async def test_fields_of_the_wrong_type_are_ignored(copilot, provider_context) -> None:
    # Item 20: lists and objects are not rendered as Python reprs; numbers become text.
    copilot.script.append("odd-types")
    events = await collect(request("Hi"), provider_context())
    assert text_of(events) == "Hello 42"
    assert not any(isinstance(e, ReasoningDelta) for e in events)
    assert [e for e in events if isinstance(e, Citation)] == [
        Citation(url="https://example.org/a", title=None)
    ]
    media = [e for e in events if isinstance(e, Media)]
    assert len(media) == 1 and media[0].url.endswith(".png")
    assert media[0].thumbnail_url is None and media[0].alt is None
    state = state_of(events)
    assert state["conversation_id"] == "conv-0" and "title" not in state


async def test_error_frame_of_the_wrong_type_is_not_a_repr(copilot, provider_context) -> None:
    copilot.script.append("odd-error")
    with pytest.raises(ProviderError) as info:
        await collect(request("Hi"), provider_context())
    assert "['" not in info.value.message and "{'" not in info.value.message


async def test_invalid_event_keeps_the_upstream_message(copilot, provider_context) -> None:
    # Item 18: the upstream's message is the reason, not the generic bot-clearance guess.
    copilot.script.append("error:invalid-event:unknown conversationId")
    with pytest.raises(ProviderError, match="unknown conversationId") as info:
        await collect(request("Hi"), provider_context())
    assert "bot clearance" not in info.value.message


async def test_forgotten_conversation_starts_again_with_the_history(
    copilot, provider_context
) -> None:
    # Item 18: "unknown conversationId" on a continued conversation is not a 502 for ever.
    first = await collect(request("My name is Ada."), provider_context(conversation_id="c1"))
    state = state_of(first)
    copilot.forget(state["conversation_id"])
    history = ["My name is Ada.", {"role": "assistant", "content": text_of(first)}]
    ctx = provider_context(conversation_id="c1", conversation=state)
    second = await collect(request(*history, "What is my name?"), ctx)
    assert text_of(second) == "Hello from Copilot (turn 1)."
    renewed = state_of(second)
    assert renewed["conversation_id"] != state["conversation_id"]
    assert renewed["session_cookies"] == state["session_cookies"]  # the same identity
    sent = copilot.texts(renewed["conversation_id"])[0]
    assert "User: My name is Ada." in sent and sent.endswith("What is my name?")
    # The new upstream conversation is the one that goes on.
    ctx = provider_context(conversation_id="c1", conversation=renewed)
    reply = {"role": "assistant", "content": text_of(second)}
    third = await collect(request(*history, "What is my name?", reply, "Sure?"), ctx)
    assert text_of(third) == "Hello from Copilot (turn 2)."
    assert copilot.texts(renewed["conversation_id"])[1] == "Sure?"


def earlier_image_request() -> ChatRequest:
    return request(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": DATA_URI}},
            ],
        },
        {"role": "assistant", "content": "A single pixel."},
        "Which colour is it?",
    )


async def test_image_in_an_earlier_message_is_attached(copilot, provider_context) -> None:
    # Item 19: a self-contained request's earlier image goes along, not as "[image]".
    events = await collect(earlier_image_request(), provider_context(cookies=logged_in))
    assert text_of(events) == "Hello from Copilot (turn 1, 1 images)."
    assert copilot.uploads == [{"kind": "image", "type": "image/png", "size": len(PNG)}]
    content = copilot.last_send["content"]
    assert [p["type"] for p in content] == ["image", "text"]
    assert "User: What is this? [image 1]" in content[-1]["text"]


async def test_image_in_an_earlier_message_needs_a_login(copilot, provider_context) -> None:
    with pytest.raises(ProviderAuthError, match="vision needs cookies"):
        await collect(earlier_image_request(), provider_context())
    assert copilot.starts == []


@pytest.mark.parametrize("text", ["", "  \n "])
async def test_empty_message_is_refused(copilot, provider_context, text: str) -> None:
    # Item 21: refused up front (400), not sent to fail upstream.
    with pytest.raises(InvalidRequestError, match="empty"):
        await collect(request(text), provider_context())
    assert copilot.starts == []


async def test_huge_message_is_refused(copilot, provider_context) -> None:
    with pytest.raises(InvalidRequestError, match=r"at most 10,240 characters") as info:
        await collect(request("x" * (32 * 1024 * 1024)), provider_context())
    assert info.value.status == 400 and info.value.param == "messages"
    assert copilot.starts == []


async def test_message_limit_is_exact_and_configurable(
    copilot, provider_context, monkeypatch
) -> None:
    assert text_of(await collect(request("x" * 10_240), provider_context())).startswith("Hello")
    with pytest.raises(InvalidRequestError, match="10,241"):
        await collect(request("x" * 10_241), provider_context())
    monkeypatch.setenv("COPILOT_MAX_MESSAGE_CHARS", "50")
    with pytest.raises(InvalidRequestError, match="at most 50 characters"):
        await collect(request("x" * 51), provider_context())


async def test_frame_too_big_for_the_server_is_an_upstream_error(
    copilot, provider_context, monkeypatch
) -> None:
    # With the limit raised past what the server takes, its closing is mapped, not raw.
    monkeypatch.setenv("COPILOT_MAX_MESSAGE_CHARS", str(10**9))
    with pytest.raises(ProviderError, match="chat socket"):
        await collect(request("x" * (5 * 1024 * 1024)), provider_context())


async def test_oversized_image_prompt_is_refused(copilot, provider_context) -> None:
    req = ImageRequest(prompt="x" * 20_000)
    with pytest.raises(InvalidRequestError, match="10,240"):
        await plugin.generate_images(request=req, ctx=provider_context())
    assert copilot.starts == []


async def test_upload_answer_of_the_wrong_type_is_an_upstream_error(
    copilot, provider_context
) -> None:
    copilot.odd_upload = True
    with pytest.raises(ProviderError, match="returned no url"):
        await collect(vision_request(), provider_context(cookies=logged_in))
    assert copilot.sockets == []  # the list never reached a send frame


async def test_an_audio_part_is_refused_before_any_call(copilot, provider_context) -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    req = request({"role": "user", "content": [{"type": "text", "text": "Listen"}, audio]})
    with pytest.raises(InvalidRequestError, match="'input_audio' content part") as info:
        await collect(req, provider_context())
    assert info.value.param == "messages.0.content.1"
    assert copilot.starts == [] and copilot.sockets == []
