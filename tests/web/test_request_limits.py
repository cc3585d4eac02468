"""Issue 17 (items 1-6): request limits, caps and edge validation. A hostile body is a 4xx
naming its limit and never reaches a provider; a crowd of them gets 503 + Retry-After."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from g4f_server.config import AppConfig
from g4f_server.requests import ChatRequest
from g4f_server.web.body import check_json_shape, shape_bounded_by_bytes
from g4f_server.web.validation import lean_chat, validation_error
from tests.fake_providers import Scripted
from tests.media_providers import Painter
from tests.server_process import free_port, server_process

HELLO = [{"role": "user", "content": "hi"}]
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def raw(port: int, head: bytes, body: bytes = b"", *, wait: float = 10) -> tuple[int, bytes]:
    """Send raw bytes (headers that no client library would send), read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
        length = 0
        for line in answer.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        content = await asyncio.wait_for(reader.readexactly(length), wait)
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1]), content


def post_head(path: str, length: int, *extra: bytes, ctype: bytes = b"application/json") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        b"Content-Type: " + ctype,
        f"Content-Length: {length}".encode(),
        b"Connection: close",
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def post(client: Any, path: str = "/v1/chat/completions", **body: Any) -> tuple[int, Any]:
    resp = await client.post(path, json=body)
    return resp.status, await resp.json()


# --- JSON bodies: counts and nesting -------------------------------------------------------


async def test_message_count_and_content_parts_are_capped(make_client: Any) -> None:
    echo = Scripted()
    client = await make_client(echo, max_messages=10, max_content_parts=5)
    status, body = await post(client, model="echo-1", messages=HELLO * 11)
    assert status == 400
    assert body["error"]["param"] == "messages" and "max_messages" in body["error"]["message"]
    parts = [{"type": "text", "text": "a"}] * 6
    status, body = await post(client, model="echo-1", messages=[{"role": "user", "content": parts}])
    assert status == 400 and "max_content_parts" in body["error"]["message"]
    assert echo.seen == []
    status, _ = await post(client, model="echo-1", messages=HELLO * 10)
    assert status == 200


async def test_content_parts_are_capped_on_anthropic_messages(make_client: Any) -> None:
    """The Messages API's blocks count too: its text blocks are merged on the way to a
    chat request, so 5,000 of them were answered 200 where chat answers 400."""
    echo = Scripted()
    client = await make_client(echo, max_content_parts=5)
    blocks = [{"type": "text", "text": "a"}] * 6
    message = {"role": "user", "content": blocks}
    resp = await client.post(
        "/v1/messages", json={"model": "echo-1", "max_tokens": 16, "messages": [message]}
    )
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_content_parts" in body["error"]["message"]
    assert echo.seen == []
    message = {"role": "user", "content": blocks[:5]}
    resp = await client.post(
        "/v1/messages", json={"model": "echo-1", "max_tokens": 16, "messages": [message]}
    )
    assert resp.status == 200


async def test_deep_json_is_refused_before_any_provider_call(make_client: Any) -> None:
    """300 levels parse (orjson allows 1,024) but cannot be stored as history (orjson
    writes at most 255): the conversation was silently dropped, or the provider crashed."""
    echo = Scripted()
    client = await make_client(echo)
    deep: Any = "x"
    for _ in range(300):
        deep = {"a": deep}
    status, body = await post(
        client, model="echo-1", messages=HELLO, conversation_id="c", metadata=deep
    )
    assert status == 400
    assert body["error"]["code"] == "json_too_deep" and body["error"]["param"] == "metadata"
    assert "max_json_depth" in body["error"]["message"]
    assert echo.seen == []


async def test_json_item_count_is_capped(make_client: Any) -> None:
    client = await make_client(Scripted(), max_json_items=1000)
    status, body = await post(client, model="echo-1", messages=HELLO, tags=list(range(2000)))
    assert status == 400 and body["error"]["code"] == "json_too_large"
    assert "max_json_items" in body["error"]["message"]


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/images/generations", "width", "wide"),
        ("/v1/images/generations", "height", 1.5),
        ("/v1/images/generations", "image", 5),
        ("/v1/images/generations", "images", [1, 2]),
        ("/v1/images/generations", "api_key", "a\x00b"),
        ("/v1/chat/completions", "modalities", "text"),
        ("/v1/chat/completions", "api_key", "key\x00"),
        ("/v1/chat/completions", "api_key", "clé"),
    ],
)
async def test_client_mistakes_are_400_with_param_not_502(
    make_client: Any, path: str, field: str, value: Any
) -> None:
    echo, painter = Scripted(), Painter()
    client = await make_client(echo, painter)
    body = {"prompt": "a cat"} if "images" in path else {"model": "echo-1", "messages": HELLO}
    status, answer = await post(client, path, **body, **{field: value})
    assert status == 400, answer
    assert answer["error"]["param"] == field
    assert echo.seen == [] and painter.seen == []


async def test_valid_image_options_still_reach_the_provider(make_client: Any) -> None:
    painter = Painter()
    client = await make_client(painter)
    status, _ = await post(
        client,
        "/v1/images/generations",
        prompt="a cat",
        width=512,
        height="512",
        image="https://x.invalid/a.png",
    )
    assert status == 200
    assert painter.seen[0].model_extra == {
        "width": 512,
        "height": "512",
        "image": "https://x.invalid/a.png",
    }


# --- headers that are not UTF-8 ------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["pk-1", "", "k\xe9y", "a\x00b", "tab\there", "del\x7f", "~ !", "key\n"]
)
def test_a_provider_key_header_obeys_the_api_key_fields_rule(key: str) -> None:
    """scope.py checks a header's provider key by the rule the body's ``api_key`` is
    validated with (requests.header_safe), without loading pydantic at start-up."""
    from types import SimpleNamespace

    from g4f_server import errors
    from g4f_server.pipeline.scope import provider_key
    from g4f_server.requests import header_safe

    request: Any = SimpleNamespace(headers={"X-Provider-Key": key or None})
    try:
        header_safe(key)
        body_ok = True
    except ValueError:
        body_ok = False
    try:
        header_ok = provider_key(request, None) == (key or None)
    except errors.InvalidRequestError as exc:
        header_ok = False
        assert exc.param == "X-Provider-Key"
    assert header_ok == body_ok


@pytest.mark.parametrize("value", ["key\n", "\nkey", "k\r\ney"])
def test_a_line_break_anywhere_in_a_provider_key_is_refused(value: str) -> None:
    """A key travels upstream in a header; ``$`` alone would let a final newline through."""
    from g4f_server.requests import header_safe

    with pytest.raises(ValueError):
        header_safe(value)


def test_an_image_size_with_a_trailing_newline_is_refused() -> None:
    from pydantic import ValidationError

    from g4f_server.requests import ImageRequest

    assert ImageRequest(prompt="a cat", size="512x512").size == "512x512"
    with pytest.raises(ValidationError):
        ImageRequest(prompt="a cat", size="512x512\n")


async def test_non_utf8_headers_are_client_errors(start_gateway: Any, tmp_path: Any) -> None:
    base = await start_gateway(plugins=[Scripted()], data_dir=str(tmp_path))
    port = int(base.rsplit(":", 1)[1])
    chat = b'{"model":"echo-1","messages":[{"role":"user","content":"hi"}],"conversation_id":"c"}'
    # The conversation key hashes the credentials: bytes that are not UTF-8 broke it.
    status, _ = await raw(
        port, post_head("/v1/chat/completions", len(chat), b"Authorization: Bearer \xff\xfe"), chat
    )
    assert status == 200
    status, body = await raw(
        port, post_head("/v1/chat/completions", len(chat), b"X-Provider-Key: k\xe9y"), chat
    )
    assert status == 400 and b'"param":"X-Provider-Key"' in body

    keyed = await start_gateway(plugins=[Scripted()], data_dir=str(tmp_path), api_key="sekret")
    port = int(keyed.rsplit(":", 1)[1])
    for header in (b"g4f-api-key: \xff\xfe", b"Authorization: Bearer s\xe9kret"):
        status, body = await raw(port, post_head("/v1/chat/completions", len(chat), header), chat)
        assert status == 401 and b'"invalid_api_key"' in body


# --- multipart -----------------------------------------------------------------------------


def _parts(
    count: int, *, filename: bytes = b"c.json", header: bytes = b"", data: bytes = b""
) -> bytes:
    one = (
        b"--bnd\r\nContent-Disposition: form-data; name=\"files\"; filename=\""
        + filename + b"\"\r\n"
        + header + b"Content-Type: application/json\r\n\r\n" + data + b"\r\n"
    )  # fmt: skip
    return one * count + b"--bnd--\r\n"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (_parts(101), 413, b"max_multipart_parts"),
        # Headers count toward the limit: 40 parts with 1 KB of headers each, no data.
        (_parts(40, header=b"X-Pad: " + b"p" * 1000 + b"\r\n"), 413, b"max_upload_size"),
        (_parts(1, header=b"X-Long: " + b"l" * 9000 + b"\r\n"), 400, b"Malformed multipart"),
        (_parts(1, filename=b"\xff\xfe.json", data=b"[]"), 400, b"not UTF-8"),
    ],
)
async def test_hostile_multipart_bodies(
    start_gateway: Any, tmp_path: Any, body: bytes, status: int, needle: bytes
) -> None:
    base = await start_gateway(
        plugins=[Scripted()], data_dir=str(tmp_path), max_upload_size=32 * 1024
    )
    port = int(base.rsplit(":", 1)[1])
    for path in ("/v1/upload_cookies", "/v1/audio/transcriptions"):
        # Chunked, as the issue sent it: no Content-Length to refuse up front.
        head = post_head(path, 0, ctype=b"multipart/form-data; boundary=bnd")
        head = head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        got, answer = await raw(port, head, b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        assert got == status, (path, answer)
        assert needle in answer and answer.startswith(b'{"error"')


# --- time and crowds -----------------------------------------------------------------------


async def test_a_body_that_never_arrives_is_a_408(start_gateway: Any, tmp_path: Any) -> None:
    base = await start_gateway(plugins=[Scripted()], data_dir=str(tmp_path), body_timeout=0.3)
    port = int(base.rsplit(":", 1)[1])
    for path, ctype in (
        ("/v1/chat/completions", b"application/json"),
        ("/v1/upload_cookies", b"multipart/form-data; boundary=bnd"),
    ):
        status, body = await raw(port, post_head(path, 1_000_000, ctype=ctype), b'{"model":')
        assert status == 408 and b"body_timeout" in body


async def test_in_flight_caps_answer_503_with_retry_after(make_client: Any) -> None:
    slow = Scripted(delay=1.0)
    client = await make_client(slow, max_in_flight=1)
    first = asyncio.create_task(
        client.post("/v1/chat/completions", json={"model": "echo-1", "messages": HELLO})
    )
    while not slow.seen:
        await asyncio.sleep(0.01)
    resp = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": HELLO})
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert resp.headers["x-should-retry"] == "true"
    assert (await resp.json())["error"]["code"] == "server_overloaded"
    assert (await client.get("/health")).status == 200  # liveness is never capped
    assert (await first).status == 200
    assert (
        await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": HELLO})
    ).status == 200


async def test_in_flight_body_budget(make_client: Any) -> None:
    slow = Scripted(delay=1.0)
    client = await make_client(slow, in_flight_body_budget=4096)
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "x" * 3000}]}
    first = asyncio.create_task(client.post("/v1/chat/completions", json=body))
    while not slow.seen:
        await asyncio.sleep(0.01)
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    small = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": HELLO})
    assert small.status == 200  # a small body still fits beside the big one
    assert (await first).status == 200


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G4F_")}
    return env | extra


async def test_connections_over_the_cap_get_503_and_the_server_stays_up(tmp_path: Any) -> None:
    env = _env(G4F_MAX_CONNECTIONS="4", XDG_DATA_HOME=str(tmp_path), G4F_LOAD_PLUGINS="none")
    with server_process(env=env) as (_, base):
        port = int(base.rsplit(":", 1)[1])
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        await asyncio.sleep(0.2)
        status, body = await raw(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 503 and b"max_connections" in body
        for _, writer in idle:
            writer.close()
        await asyncio.sleep(0.3)
        status, _ = await raw(port, HEALTH)
        assert status == 200


def test_malformed_http_is_logged_once_without_tracebacks(tmp_path: Any) -> None:
    port = free_port()
    env = _env(XDG_DATA_HOME=str(tmp_path), G4F_LOAD_PLUGINS="none")
    proc = subprocess.Popen(
        [sys.executable, "-m", "g4f_server", "api", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        async def hammer() -> list[int]:
            for _ in range(200):
                try:
                    await raw(port, HEALTH)
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            bad = [b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: nope\r\n\r\n"] * 30
            return [(await raw(port, b))[0] for b in bad]

        statuses = asyncio.run(hammer())
        assert set(statuses) == {400}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    text = err.decode(errors="replace")
    assert "Traceback" not in text
    assert text.count("Content-Length: nope") == 1, text  # one line for all 30


# --- the byte bound that lets a small body skip the exact shape walk ----------------------

_JSON = st.recursive(
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet='{}[],"\\ab'),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet='{}[],"ab', max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(data=_JSON, max_depth=st.integers(2, 6), max_items=st.integers(1, 25))
def test_the_byte_bound_never_passes_json_the_exact_check_refuses(
    data: Any, max_depth: int, max_items: int
) -> None:
    root = {"body": data}  # read_json checks objects only
    body = bytearray(orjson.dumps(root))
    if shape_bounded_by_bytes(body, max_depth, max_items):
        check_json_shape(root, max_depth, max_items)  # raises if the bound lied


def test_a_short_chat_body_is_bounded_by_its_bytes_under_the_default_limits() -> None:
    """The fast path is the common one: a chat body of a few dozen messages (under
    ``max_json_depth`` containers) skips the walk under the defaults; a longer one, or one
    just past the depth limit, does not."""
    config = AppConfig()
    limits = (config.max_json_depth, config.max_json_items)

    def chat(turns: int) -> bytearray:
        messages = [{"role": "user", "content": f"turn {n}, with {{braces}} and [brackets]"}
                    for n in range(turns)]  # fmt: skip
        return bytearray(orjson.dumps({"model": "m", "messages": messages, "stream": True}))

    assert shape_bounded_by_bytes(chat(20), *limits)
    assert not shape_bounded_by_bytes(chat(200), *limits)
    deep: Any = "x"
    for _ in range(config.max_json_depth + 1):
        deep = [deep]
    assert not shape_bounded_by_bytes(bytearray(orjson.dumps({"metadata": deep})), *limits)


# --- the lean chat validator (``read_model`` on a body within every limit) -----------------


def _chat_bodies() -> list[Any]:
    """Valid and invalid chat bodies that name no option: every problem but the limits."""
    messages: list[Any] = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "be brief", "name": "s"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "function": {"name": "f"}}],
        },
        {"role": "tool", "content": "42", "tool_call_id": "c"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": "u"}],
        },
        {"role": "user", "content": "x", "x_vendor": {"a": [1]}},
        {"role": "user"},  # no content
        {"role": "tool", "content": "no id"},
        {"role": "robot", "content": "x"},
        {"role": "user", "content": [{"type": "text"}]},
        {"role": "user", "content": [{"text": "no type"}]},
        "not a message",
    ]
    fields: list[dict[str, Any]] = [
        {},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"temperature": 0.5, "top_p": 1, "max_tokens": 8, "stop": "END", "seed": 3},
        {"temperature": 3, "n": 2},
        {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"},
        {"response_format": {"type": "json_object"}, "user": "u", "x_extra": [1, {"b": None}]},
        {"response_format": {"type": "yaml"}},
        {"api_key": "k\n", "conversation_id": "c" * 201},
        {"provider": "p", "api_key": "k", "proxy": "http://127.0.0.1:1"},
    ]
    bodies: list[Any] = []
    for extra in fields:
        for i, message in enumerate(messages):
            bodies.append(
                {"model": "m", "messages": [message, messages[(i + 1) % len(messages)]], **extra}
            )
    bodies += [{"model": "m"}, {"messages": []}, {"messages": "hi"}, {"messages": None}]
    return bodies


def _outcome(validate: Any, body: Any) -> Any:
    try:
        chat = validate(body)
    except ValidationError as exc:
        return validation_error(exc).args
    return (
        chat.model_dump(),
        chat.model_fields_set,
        chat.model_extra,
        [(type(m), m.model_fields_set, m.model_extra) for m in chat.messages],
    )


def test_the_lean_chat_validator_gives_what_the_full_one_gives() -> None:
    """Without ``_options`` and ``_within_limits`` (which pass every body here), the same
    request or the same first problem, its ``param`` and the count of the others."""
    full = ChatRequest.__pydantic_validator__.validate_python
    lean = lean_chat().validate_python
    bodies = _chat_bodies()
    refused = 0
    for body in bodies:
        expected = _outcome(full, body)
        assert _outcome(lean, body) == expected, body
        refused += type(expected[0]) is str
    assert 20 < refused < len(bodies) - 20  # both outcomes were compared


def test_the_lean_chat_validator_leaves_out_only_the_request_wide_checks() -> None:
    """What makes it lean (the limits and the options are read_model's to prove), and
    what it must keep (a message's own rules, the ``stop`` list)."""
    lean = lean_chat().validate_python
    chat = lean({"messages": [{"role": "user", "content": "hi"}] * 3000, "stop": "x"})
    assert len(chat.messages) == 3000 and chat.stop == ["x"]
    with pytest.raises(ValidationError):
        lean({"messages": [{"role": "user"}]})


async def test_a_compact_body_at_the_limits_is_still_refused(make_client: Any) -> None:
    """Compact JSON (fewest commas): the byte bound that lets read_model skip the
    limits' check is never below the real counts."""
    client = await make_client(Scripted(), max_messages=3, max_content_parts=2)

    async def send(body: dict[str, Any]) -> int:
        resp = await client.post(
            "/v1/chat/completions",
            data=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        return resp.status

    one = {"role": "user", "content": "a"}
    assert await send({"model": "echo-1", "messages": [one] * 3}) == 200
    assert await send({"model": "echo-1", "messages": [one] * 4}) == 400
    parts = [{"type": "text", "text": "a"}]
    assert (
        await send({"model": "echo-1", "messages": [{"role": "user", "content": parts * 2}]}) == 200
    )
    assert (
        await send({"model": "echo-1", "messages": [{"role": "user", "content": parts * 3}]}) == 400
    )
    assert await send({"model": "echo-1", "messages": [one], "modalities": "text"}) == 400
