"""End to end: the official openai SDK -> a running g4f-server -> the plugin -> the emulator."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
DATA_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
VISION = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": DATA_URI}},
        ],
    }
]


async def call(method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kw) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_models_and_provider_listed(
    gateway_url: str, openai_client: openai.AsyncOpenAI
) -> None:
    ids = {m.id async for m in openai_client.models.list()}
    assert {"Copilot", "Think Deeper", "Smart (GPT-5)"} <= ids
    status, info = await call("GET", gateway_url + "/v1/providers/Copilot")
    assert status == 200
    assert info["label"] == "Microsoft Copilot"
    assert "HAR" in json.dumps(info)


async def test_chat(copilot: Any, openai_client: openai.AsyncOpenAI) -> None:
    resp = await openai_client.chat.completions.create(model="Copilot", messages=user("Hi"))
    assert resp.choices[0].message.content == "Hello from Copilot (turn 1)."
    assert resp.choices[0].finish_reason == "stop"
    assert copilot.texts("conv-0") == ["Hi"]


async def test_alias_routes_to_copilot(copilot: Any, openai_client: openai.AsyncOpenAI) -> None:
    resp = await openai_client.chat.completions.create(model="gpt-5", messages=user("Hi"))
    assert resp.choices[0].message.content.startswith("Hello from Copilot")
    assert copilot.last_send["mode"] == "smart"


async def test_stream(openai_client: openai.AsyncOpenAI) -> None:
    stream = await openai_client.chat.completions.create(
        model="Copilot", messages=user("Hi"), stream=True
    )
    parts = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta]
    assert "".join(p for p in parts if p) == "Hello from Copilot (turn 1)."


async def test_reasoning_model(copilot: Any, openai_client: openai.AsyncOpenAI) -> None:
    resp = await openai_client.chat.completions.create(model="Think Deeper", messages=user("Why?"))
    message = resp.choices[0].message
    assert (message.model_extra or {}).get("reasoning_content") == "Let me think. Done thinking."
    assert message.content == "Hello from Copilot (turn 1)."
    assert copilot.last_send["mode"] == "reasoning"


async def test_citations_become_annotations(openai_client: openai.AsyncOpenAI) -> None:
    resp = await openai_client.chat.completions.create(model="Search", messages=user("News?"))
    annotations = resp.choices[0].message.annotations
    assert annotations and annotations[0].url_citation.url == "https://example.org/source"


async def test_image_in_chat_is_markdown(copilot: Any, openai_client: openai.AsyncOpenAI) -> None:
    resp = await openai_client.chat.completions.create(
        model="Copilot", messages=user("draw: a cat")
    )
    content = resp.choices[0].message.content
    assert "[![a cat](" in content and ".png)" in content
    # As the README says: a chat image links to Copilot's own host (here the emulator),
    # not to this server's /media, and the gateway fetched nothing.
    assert f"({copilot.base}/images/" in content and "/media/" not in content
    assert copilot.downloads == []


async def test_conversation_continuation_body_field(
    copilot: Any, openai_client: openai.AsyncOpenAI
) -> None:
    first = await openai_client.chat.completions.create(
        model="Copilot", messages=user("My name is Ada."), extra_body={"conversation_id": "c1"}
    )
    history = [
        *user("My name is Ada."),
        {"role": "assistant", "content": first.choices[0].message.content},
        *user("What is my name?"),
    ]
    second = await openai_client.chat.completions.create(
        model="Copilot", messages=history, extra_body={"conversation_id": "c1"}
    )
    assert second.choices[0].message.content == "Hello from Copilot (turn 2)."
    assert copilot.texts("conv-0") == ["My name is Ada.", "What is my name?"]
    assert len(copilot.starts) == 1


async def test_conversation_continuation_route(copilot: Any, gateway_url: str) -> None:
    async with openai.AsyncOpenAI(
        base_url=gateway_url + "/api/Copilot/c7", api_key="x", max_retries=0
    ) as c:
        await c.chat.completions.create(model="Copilot", messages=user("One"))
        stream = await c.chat.completions.create(model="Copilot", messages=user("Two"), stream=True)
        text = "".join([x.choices[0].delta.content or "" async for x in stream if x.choices])
    assert text == "Hello from Copilot (turn 2)."
    assert copilot.texts("conv-0") == ["One", "Two"]


async def test_without_conversation_id_history_is_folded(
    copilot: Any, openai_client: openai.AsyncOpenAI
) -> None:
    history = [
        *user("My name is Ada."),
        {"role": "assistant", "content": "Hi Ada."},
        *user("What is my name?"),
    ]
    await openai_client.chat.completions.create(model="Copilot", messages=history)
    sent = copilot.texts("conv-0")[0]
    assert "User: My name is Ada." in sent and sent.endswith("What is my name?")


async def test_vision_without_login_is_403(copilot: Any, openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError, match="vision needs cookies"):
        await openai_client.chat.completions.create(model="Copilot", messages=VISION)
    assert copilot.starts == []


async def test_vision_with_token_header(copilot: Any, openai_client: openai.AsyncOpenAI) -> None:
    resp = await openai_client.chat.completions.create(
        model="Copilot", messages=VISION, extra_headers={"X-Provider-Key": "good-token"}
    )
    assert resp.choices[0].message.content == "Hello from Copilot (turn 1, 1 images)."
    assert copilot.uploads[0]["type"] == "image/png"


def har(token: str) -> bytes:
    entry = {
        "request": {
            "method": "POST",
            "url": "https://copilot.microsoft.com/c/api/start",
            "headers": [
                {"name": "authorization", "value": f"Bearer {token}"},
                {"name": "cookie", "value": "MUID=abc"},
            ],
            "cookies": [{"name": "MUID", "value": "abc"}],
        },
        "response": {"status": 200, "headers": [], "cookies": []},
    }
    return json.dumps({"log": {"version": "1.2", "entries": [entry]}}).encode()


async def test_vision_with_uploaded_har(copilot: Any, gateway_url: str, openai_client: Any) -> None:
    _, before = await call("GET", gateway_url + "/v1/providers/Copilot")
    assert before["auth_status"]["logged_in"] is False
    form = aiohttp.FormData()
    form.add_field("files", har("good-token"), filename="copilot.har")
    status, answer = await call("POST", gateway_url + "/v1/upload_cookies", data=form)
    assert status == 200, answer
    _, after = await call("GET", gateway_url + "/v1/providers/Copilot")
    assert after["auth_status"]["logged_in"] is True
    assert "good-token" not in json.dumps(after)
    resp = await openai_client.chat.completions.create(model="Copilot", messages=VISION)
    assert resp.choices[0].message.content == "Hello from Copilot (turn 1, 1 images)."
    assert copilot.sockets[-1]["query"]["accessToken"] == "good-token"


async def test_image_generation(
    copilot: Any, openai_client: openai.AsyncOpenAI, gateway_url: str
) -> None:
    result = await openai_client.images.generate(model="Copilot", prompt="a lighthouse", n=1)
    assert result.data[0].url
    assert result.data[0].revised_prompt == "a lighthouse"
    assert "Draw an image: a lighthouse" in copilot.texts("conv-0")[0]
    assert copilot.downloads == ["1.png"]  # the gateway fetched the generated image
    b64 = await openai_client.images.generate(
        model="Copilot", prompt="a boat", response_format="b64_json", size="1024x1792"
    )
    assert base64.b64decode(b64.data[0].b64_json) == PNG
    assert "portrait" in copilot.last_send["content"][-1]["text"]


async def test_image_refusal_is_502(
    copilot: Any, openai_client: openai.AsyncOpenAI, gateway_url: str
) -> None:
    with pytest.raises(openai.APIStatusError, match="without an image") as info:
        await openai_client.images.generate(model="Copilot", prompt="something forbidden")
    assert info.value.status_code == 502


# --- failure modes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (401, openai.PermissionDeniedError),
        (429, openai.RateLimitError),
        (500, openai.APIStatusError),
    ],
)
async def test_session_start_failure(
    copilot: Any, openai_client: Any, status: int, exc: Any
) -> None:
    copilot.start_status = status
    with pytest.raises(exc) as info:
        await openai_client.chat.completions.create(model="Copilot", messages=user("Hi"))
    if status == 500:
        assert info.value.status_code == 502


@pytest.mark.parametrize(
    ("scenario", "status", "text"),
    [
        ("error:chat-service-unavailable", 502, "region"),
        ("error:invalid-event", 502, "invalid-event"),
        ("error:invalid-event:a reason", 502, "invalid-event: a reason"),
        ("empty", 502, "without an answer"),
        ("error:rate-limited", 429, "rate"),
        ("challenge:cloudflare", 403, "cf_clearance"),
        ("challenge:hashcash", 403, "cannot solve"),
        ("silence", 504, "silent"),
        ("close", 502, "closed the chat socket"),
    ],
)
async def test_upstream_failures(
    copilot: Any, openai_client: openai.AsyncOpenAI, scenario: str, status: int, text: str
) -> None:
    copilot.script.append(scenario)
    with pytest.raises(openai.APIStatusError) as info:
        await openai_client.chat.completions.create(model="Copilot", messages=user("Hi"))
    assert info.value.status_code == status
    assert text in str(info.value)


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_answer_without_text_is_a_502_empty_answer(
    copilot: Any, gateway_url: str, streamed: bool
) -> None:
    """A turn that ends without text is no success, streamed or not (nothing has been sent
    yet, so it is a plain 502). The plugin says so itself (``copilot_empty_answer``, with
    what Copilot sent); the kernel's ``empty_answer`` rule is the backstop."""
    copilot.script.append("empty")
    body = {"model": "Copilot", "messages": user("Hi"), "stream": streamed}
    status, answer = await call("POST", gateway_url + "/v1/chat/completions", json=body)
    assert status == 502
    assert answer["error"]["code"].endswith("empty_answer")


async def test_method_less_challenge_is_transparent(copilot: Any, openai_client: Any) -> None:
    copilot.script.append("challenge")
    resp = await openai_client.chat.completions.create(model="Copilot", messages=user("Hi"))
    assert resp.choices[0].message.content == "Hello from Copilot (turn 1)."


async def test_stall_mid_stream_ends_with_error(
    copilot: Any, openai_client: openai.AsyncOpenAI
) -> None:
    copilot.script.append("stall")
    stream = await openai_client.chat.completions.create(
        model="Copilot", messages=user("Hi"), stream=True
    )
    seen = []
    with pytest.raises(openai.APIError, match="silent"):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                seen.append(chunk.choices[0].delta.content)
    assert "".join(seen) == "Partial"


async def test_client_disconnect_closes_upstream_socket(
    copilot: Any, gateway_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPILOT_IDLE_TIMEOUT", "30")
    copilot.script.append("stall")
    body = {"model": "Copilot", "messages": user("Hi"), "stream": True}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(gateway_url + "/v1/chat/completions", json=body)
        async for line in resp.content:
            if b"Partial" in line:
                break
        assert copilot.open_sockets == 1
        resp.close()  # the client goes away mid-answer
    for _ in range(200):
        if copilot.open_sockets == 0:
            break
        await asyncio.sleep(0.02)
    assert copilot.open_sockets == 0


async def test_cookie_export_without_token_uses_web_flavour_but_no_vision(
    copilot: Any, gateway_url: str, openai_client: openai.AsyncOpenAI
) -> None:
    export = [{"name": "MUID", "value": "abc", "domain": ".microsoft.com"}]
    form = aiohttp.FormData()
    form.add_field("files", json.dumps(export).encode(), filename="cookies.json")
    status, answer = await call("POST", gateway_url + "/v1/upload_cookies", data=form)
    assert status == 200, answer
    await openai_client.chat.completions.create(model="Copilot", messages=user("Hi"))
    socket = copilot.sockets[-1]
    assert "MUID=abc" in socket["headers"]["Cookie"]  # parent-domain cookie came along
    assert socket["headers"]["User-Agent"].startswith("Mozilla/")
    with pytest.raises(openai.PermissionDeniedError, match="no access token"):
        await openai_client.chat.completions.create(model="Copilot", messages=VISION)


async def test_uploaded_cf_clearance_answers_cloudflare_challenge(
    copilot: Any, gateway_url: str, openai_client: openai.AsyncOpenAI
) -> None:
    export = [{"name": "cf_clearance", "value": "cleared", "domain": ".copilot.microsoft.com"}]
    form = aiohttp.FormData()
    form.add_field("files", json.dumps(export).encode(), filename="cookies.json")
    status, answer = await call("POST", gateway_url + "/v1/upload_cookies", data=form)
    assert status == 200, answer
    copilot.script.append("challenge:cloudflare")
    resp = await openai_client.chat.completions.create(model="Copilot", messages=user("Hi"))
    assert resp.choices[0].message.content == "Hello from Copilot (turn 1)."
    assert copilot.sockets[-1]["cookies"]["cf_clearance"] == "cleared"


async def test_forgotten_conversation_goes_on_from_the_stored_history(
    copilot: Any, openai_client: openai.AsyncOpenAI
) -> None:
    # The client sends only the new message; the kernel adds the stored turns.
    body = {"conversation_id": "c9"}
    await openai_client.chat.completions.create(
        model="Copilot", messages=user("My name is Ada."), extra_body=body
    )
    copilot.forget("conv-0")
    resp = await openai_client.chat.completions.create(
        model="Copilot", messages=user("What is my name?"), extra_body=body
    )
    assert resp.choices[0].message.content == "Hello from Copilot (turn 1)."
    sent = copilot.texts("conv-1")[0]
    assert "User: My name is Ada." in sent and sent.endswith("What is my name?")
    again = await openai_client.chat.completions.create(
        model="Copilot", messages=user("Sure?"), extra_body=body
    )
    assert again.choices[0].message.content == "Hello from Copilot (turn 2)."


@pytest.mark.parametrize("text", ["", "x" * 20_000])
async def test_empty_or_oversized_message_is_400(
    copilot: Any, openai_client: openai.AsyncOpenAI, text: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await openai_client.chat.completions.create(model="Copilot", messages=user(text))
    assert copilot.starts == [] and copilot.sockets == []
    if text:
        assert "10,240" in str(info.value)


async def test_earlier_image_without_login_is_403(
    copilot: Any, openai_client: openai.AsyncOpenAI
) -> None:
    messages = [*VISION, {"role": "assistant", "content": "A pixel."}, *user("Its colour?")]
    with pytest.raises(openai.PermissionDeniedError, match="vision needs cookies"):
        await openai_client.chat.completions.create(model="Copilot", messages=messages)


FILE_PART = {
    "type": "file",
    "file": {"filename": "notes.txt", "file_data": "data:text/plain;base64,aGVsbG8="},
}
VIDEO_PART = {"type": "video_url", "video_url": {"url": "https://example.org/clip.mp4"}}


@pytest.mark.parametrize(
    ("messages", "kind", "param"),
    [
        ([{"role": "user", "content": [{"type": "text", "text": "Sum up:"}, FILE_PART]}],
         "file", "messages.0.content.1"),
        ([{"role": "system", "content": "Be brief."},
          {"role": "user", "content": [VIDEO_PART, {"type": "text", "text": "What happens?"}]}],
         "video_url", "messages.1.content.0"),
        ([{"role": "user", "content": [FILE_PART]},
          {"role": "assistant", "content": "Done."}, *user("And now?")],
         "file", "messages.0.content.0"),
    ],
)  # fmt: skip
async def test_a_part_copilot_cannot_take_is_a_400_naming_it(
    copilot: Any, gateway_url: str, messages: list[Any], kind: str, param: str
) -> None:
    """A file (or any part type Copilot cannot take) is refused, never dropped to answer
    the text alone. (Audio input never gets here: no Copilot model lists it.)"""
    status, body = await call(
        "POST",
        gateway_url + "/v1/chat/completions",
        json={"model": "Copilot", "messages": messages},
    )
    assert status == 400, body
    error = body["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert repr(kind) in error["message"] and "text and image_url" in error["message"]
    assert copilot.starts == [] and copilot.sockets == []


async def test_an_assistant_refusal_part_is_folded_as_text(
    copilot: Any, openai_client: openai.AsyncOpenAI
) -> None:
    history = [
        *user("Tell me a secret."),
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot."}]},
        *user("Why not?"),
    ]
    await openai_client.chat.completions.create(model="Copilot", messages=history)
    assert "Assistant: I cannot." in copilot.texts("conv-0")[0]


async def test_reasoning_and_citations_in_the_responses_and_anthropic_protocols(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    """Copilot's own events (chainOfThought, citation) as each protocol's own shapes: a
    reasoning item and url_citation annotations, a thinking block and citations. The
    protocols' plain answers are the conformance suite's."""
    async with openai_client.responses.stream(model="Think Deeper", input="Why?") as stream:
        final = await stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Let me think. Done thinking."
    assert final.output_text == "Hello from Copilot (turn 1)."
    cited = await openai_client.responses.create(model="Search", input="News?")
    annotation = cited.output[-1].content[0].annotations[0]
    assert annotation.type == "url_citation"
    assert annotation.url == "https://example.org/source"
    async with anthropic_client.messages.stream(
        model="Think Deeper", max_tokens=100, messages=user("Why?")
    ) as messages:
        text = "".join([t async for t in messages.text_stream])
        message = await messages.get_final_message()
    assert text == "Hello from Copilot (turn 1)."
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think. Done thinking."
    found = await anthropic_client.messages.create(
        model="Search", max_tokens=100, messages=user("News?")
    )
    assert found.content[0].citations[0].url == "https://example.org/source"
