"""``ChatRequest.message_dicts`` builds plain text messages by hand and sends every other
message list through pydantic's serializer: both must give the same dicts, keys in the
same order (an upstream's cache or a test may compare the JSON text)."""

from __future__ import annotations

import itertools
from typing import Any

from g4f_server.requests import ChatRequest, _messages_serializer


def _serialized(request: ChatRequest) -> list[dict[str, Any]]:
    return _messages_serializer().to_python(request.messages, mode="json", exclude_none=True)  # type: ignore[no-any-return]


def _ordered(dicts: list[dict[str, Any]]) -> list[list[tuple[str, Any]]]:
    return [list(d.items()) for d in dicts]


_CONTENTS: list[Any] = [
    "hi",
    "",
    "ünïcode ✓",
    None,
    [{"type": "text", "text": "hi"}],
    [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": None}}],
]
_OPTIONAL: list[dict[str, Any]] = [
    {},
    {"name": "bob"},
    {"name": None},
    {"tool_call_id": "c1"},
    {"tool_call_id": None},
    {"name": "bob", "tool_call_id": "c1"},
    {"x_vendor": {"a": 1}},
    {"x_none": None},
    {"tool_calls": [{"id": "c1", "function": {"name": "f"}}]},
    {"tool_calls": None},
]


def _messages() -> list[dict[str, Any]]:
    """One message per valid combination of role, content and optional fields, each in
    two key orders (content first: the serializer puts role first)."""
    found = []
    for role, content, more in itertools.product(
        ("system", "developer", "user", "assistant", "tool"), _CONTENTS, _OPTIONAL
    ):
        message = {"role": role, "content": content, **more}
        if role == "tool" and not message.get("tool_call_id"):
            message["tool_call_id"] = "t1"
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            continue  # refused by validation
        found.append(message)
        found.append(dict(reversed(message.items())))
    return found


def test_message_dicts_equal_the_serializer_over_many_bodies() -> None:
    messages = _messages()
    assert len(messages) > 300
    # Each message alone, then runs of them (a body mixing plain and other messages).
    bodies = [[m] for m in messages]
    bodies += [messages[i : i + 7] for i in range(0, len(messages), 5)]
    handmade = 0
    for body in bodies:
        request = ChatRequest.model_validate({"model": "m", "messages": body})
        got = request.message_dicts()
        assert _ordered(got) == _ordered(_serialized(request)), body
        handmade += all(type(m.content) is str and not m.tool_calls for m in request.messages)
    assert handmade > 100  # the hand-built path was taken, not only the serializer


def test_message_dicts_are_fresh_on_every_call() -> None:
    # A plugin renames roles in place (developer -> system): a second provider after a
    # failover must still see the request as the client sent it.
    request = ChatRequest.model_validate(
        {
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": "hi"},
            ]
        }
    )
    first = request.message_dicts()
    first[0]["role"] = "system"
    assert request.message_dicts() == [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]


def test_message_dicts_follow_messages_replaced_after_validation() -> None:
    request = ChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}]})
    again = request.model_copy(update={"messages": [*request.messages, *request.messages]})
    assert again.message_dicts() == [{"role": "user", "content": "hi"}] * 2
