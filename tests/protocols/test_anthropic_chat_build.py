"""A Messages body's ChatRequest, built from its checked parts (``prevalidated``), is the one
validating the translated fields gives: the same types, values, fields set and extras,
object by object, over many bodies; and a body the chat schema would refuse is never
built (it is validated, and refused, as before)."""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

import pytest
from pydantic import BaseModel

from g4f_server import errors
from g4f_server.protocols.anthropic.request import (
    CHAT_TRUSTED,
    MessagesRequest,
    _messages,
    _options,
)
from g4f_server.protocols.prevalidated import built_chat
from g4f_server.requests import ChatRequest, set_chat_limits
from g4f_server.web.validation import parse_model


def _same(got: Any, want: Any, where: str = "chat") -> None:
    """Equal and of the same types all the way down, models' bookkeeping included."""
    assert type(got) is type(want), where
    if isinstance(want, BaseModel):
        assert got.__dict__.keys() == want.__dict__.keys(), where  # (in the same order)
        assert list(got.__dict__) == list(want.__dict__), where
        assert got.__pydantic_fields_set__ == want.__pydantic_fields_set__, where
        assert got.__pydantic_extra__ == want.__pydantic_extra__, where
        assert got.__pydantic_private__ == want.__pydantic_private__, where
        for name, value in want.__dict__.items():
            _same(got.__dict__[name], value, f"{where}.{name}")
        for name, value in (want.__pydantic_extra__ or {}).items():
            _same(got.__pydantic_extra__[name], value, f"{where}.{name}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            _same(a, b, f"{where}.{i}")
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for key, value in want.items():
            _same(got[key], value, f"{where}.{key}")
    else:
        assert got == want, where


SYSTEMS: list[Any] = [
    None,
    "Be brief.",
    "",
    [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
]
CONTENTS: list[Any] = [
    "Hello",
    "",
    '\u00e9\U0001f600 "quoted"',
    [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
    [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
    ],
]
OPTIONS: list[dict[str, Any]] = [
    {},
    {"temperature": 1},
    {"temperature": 0.5, "top_p": 1, "top_k": 5},
    {"stop_sequences": ["END", "\n\nUser:"]},
    {"metadata": {"user_id": "u-1"}},
    {"metadata": {"user_id": ""}},
    {"provider": "p", "api_key": "sk-1", "proxy": "http://127.0.0.1:1"},
    {"thinking": {"type": "enabled", "budget_tokens": 5000}},
    {"output_config": {"effort": "max"}},
    {"thinking": {"type": "disabled"}},
    {"stream": True},
    {"tools": [{"name": "f", "input_schema": {"type": "object"}}]},
    {"tool_choice": {"type": "auto"}},
    {"output_format": {"type": "json_schema", "schema": {"type": "object"}}},
    {"unknown_field": [1, 2]},
]


def _conversations() -> list[list[dict[str, Any]]]:
    out = []
    for first, second in itertools.product(CONTENTS, repeat=2):
        out.append([{"role": "user", "content": first}])
        out.append(
            [
                {"role": "user", "content": first},
                {"role": "assistant", "content": "Sure."},
                {"role": "system", "content": "Mind the user."},
                {"role": "user", "content": second},
            ]
        )
    out.append([{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}])
    out.append([{"role": "system", "content": ""}])
    out.append(
        [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
            },
        ]
    )
    return out


def _bodies() -> list[dict[str, Any]]:
    rng = random.Random(29)
    bodies = []
    for messages in _conversations():
        for system in SYSTEMS:
            options = rng.sample(OPTIONS, 3)
            body: dict[str, Any] = {"model": "m", "max_tokens": 64, "messages": messages}
            if system is not None:
                body["system"] = system
            for option in options:
                body.update(option)
            bodies.append(body)
    return bodies


def _validated(fields: dict[str, Any]) -> ChatRequest | errors.G4FError:
    try:
        return parse_model(ChatRequest, copy.deepcopy(fields))
    except errors.G4FError as error:
        return error


def test_built_equals_validated_over_many_bodies() -> None:
    built_count = 0
    bodies = _bodies()
    for body in bodies:
        request = MessagesRequest.model_validate(body)
        fields = request.chat_fields()
        want = _validated(fields)
        got = built_chat(copy.deepcopy(fields), CHAT_TRUSTED)
        if got is None:
            continue
        assert not isinstance(want, errors.G4FError), body  # never built past a refusal
        _same(got, want)
        assert got.model_dump_json() == want.model_dump_json()
        assert got.message_dicts() == want.message_dicts()
        assert got.needed_capabilities() == want.needed_capabilities()
        assert request.to_chat() == want
        built_count += 1
    # The plain shapes (text messages, the simple fields) were built, the rest validated.
    assert len(bodies) / 4 < built_count < len(bodies)


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": ""}],  # nothing left: chat's own "at least 1"
        [{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}],
    ],
)
def test_nothing_left_is_still_the_chat_schemas_refusal(messages: list[dict[str, Any]]) -> None:
    request = MessagesRequest.model_validate({"max_tokens": 8, "messages": messages})
    assert built_chat(request.chat_fields(), CHAT_TRUSTED) is None
    with pytest.raises(errors.InvalidRequestError) as refused:
        request.to_chat()
    assert refused.value.param == "messages"


def test_too_many_messages_is_still_the_chat_schemas_refusal() -> None:
    set_chat_limits(3, 2048)
    try:
        body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}] * 4}
        request = MessagesRequest.model_validate(body)
        assert built_chat(request.chat_fields(), CHAT_TRUSTED) is None
        with pytest.raises(errors.InvalidRequestError, match="max_messages"):
            request.to_chat()
    finally:
        set_chat_limits(2048, 2048)


def test_the_quick_translation_is_the_general_one() -> None:
    """``chat_fields`` takes a string system and text messages without the general
    translation (``_messages``) and skips the options when none was sent: over the
    bodies above, the same fields as the general way gives."""
    quick = 0
    for body in _bodies():
        request = MessagesRequest.model_validate(body)
        sent = request.__dict__
        try:
            general: Any = _messages(sent)
        except errors.G4FError as error:
            general = error
        try:
            fields: Any = request.chat_fields()
        except errors.G4FError as error:
            assert isinstance(general, errors.G4FError), body
            assert (error.message, error.param) == (general.message, general.param)
            continue
        assert not isinstance(general, errors.G4FError), body
        _same(fields["messages"], general)
        options: dict[str, Any] = {}
        _options(sent, options)
        assert fields == {
            "model": sent["model"],
            "messages": general,
            "stream": sent["stream"],
            "max_tokens": sent["max_tokens"],
            **options,
        }
        quick += type(sent["system"]) is str and all(
            type(m.content) is str and m.role != "system" for m in sent["messages"]
        )
    assert quick  # some bodies took the quick way
