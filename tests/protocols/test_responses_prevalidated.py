"""The chat request a Responses body becomes, built without a second validation where
the chat schema can only accept it, is the one validation would make: the same values,
fields set, extras and serialized bytes, over many bodies and history; anything else is
validated, with the chat schema's error."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from g4f_server import errors
from g4f_server.protocols.prevalidated import built_chat
from g4f_server.protocols.responses.creation import Creation
from g4f_server.protocols.responses.request import (
    CHAT_TRUSTED,
    ResponsesRequest,
    input_messages,
    plain_chat,
)
from g4f_server.requests import ChatRequest, set_chat_limits
from g4f_server.web.validation import parse_model


def trusted(fields: dict[str, Any]) -> bool:
    return built_chat(fields, CHAT_TRUSTED) is not None


def chat_request(fields: dict[str, Any]) -> ChatRequest:
    return built_chat(fields, CHAT_TRUSTED) or parse_model(ChatRequest, fields)


INPUTS: list[Any] = [
    "Say twenty words.",
    "",
    "ünïcode \"quoted\" \n and \\ escapes",
    [{"role": "user", "content": "hi"}],
    [{"type": "message", "role": "developer", "content": "be brief"}],
    [
        {"role": "system", "content": [{"type": "input_text", "text": "a"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "b"},
                                     {"type": "text", "text": "c"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "d"}]},
        {"type": "reasoning", "summary": []},
        {"role": "user", "content": "e"},
    ],
    [{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
     {"role": "user", "content": "f"}],
    # Validated (not text messages): an image, a tool call and its output.
    [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x/i.png"}]}],
    [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ],
]  # fmt: skip
HISTORY: list[list[dict[str, Any]]] = [
    [],
    [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "answer"}],
    [{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
      "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c",
      "content": "out"}],
]  # fmt: skip
OPTIONS: list[dict[str, Any]] = [
    {},
    {"instructions": "You are a helpful assistant."},
    {"instructions": ""},
    {"stream": True, "store": False, "model": "openai"},
    {"temperature": 1, "top_p": 0.5, "presence_penalty": -2, "frequency_penalty": 2},
    {"max_output_tokens": 7, "parallel_tool_calls": False},
    {"user": "u1", "provider": "p", "api_key": "sk-1", "proxy": "http://127.0.0.1:1"},
    {"safety_identifier": "s1"},
    {"user": "u2", "safety_identifier": "s2"},
    {"reasoning": {"effort": "low"}},
    {"reasoning": {"effort": ["odd", 1]}},  # an extra field: kept as it is
    {"metadata": {"k": "v"}, "truncation": "auto", "unknown_field": [1]},
    # Validated: tools, a tool choice, a response format.
    {"tools": [{"type": "function", "name": "w", "parameters": {}}]},
    {"tool_choice": "none"},
    {"text": {"format": {"type": "json_object"}}},
    {"text": {"format": {"type": "json_schema", "name": "s", "schema": {}}}},
]


def _state(model: BaseModel) -> dict[str, Any]:
    """Everything of a model that validation decides."""
    values = {
        name: [_state(m) for m in value] if name == "messages" else value
        for name, value in model.__dict__.items()
    }
    return {
        "type": type(model),
        "dict": values,
        "order": list(model.__dict__),
        "set": model.model_fields_set,
        "extra": model.__pydantic_extra__,
        "private": model.__pydantic_private__,
    }


def _fields(raw: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    body = parse_model(ResponsesRequest, raw)
    plan = body.tool_plan()
    return body.chat_fields(history + input_messages(body.input_items(), plan), plan)


def test_built_equals_validated_over_many_bodies() -> None:
    built = 0
    cases = itertools.product(INPUTS, HISTORY, OPTIONS)
    for number, (given, history, options) in enumerate(cases):
        fields = _fields({"input": given, **options}, history)
        validated = parse_model(ChatRequest, orjson.loads(orjson.dumps(fields)))
        made = chat_request(fields)
        assert _state(made) == _state(validated), (number, given, history, options)
        assert made.model_dump_json() == validated.model_dump_json()
        assert made.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
        assert made.message_dicts() == validated.message_dicts()
        assert made.needed_capabilities() == validated.needed_capabilities()
        assert made.token_limit == validated.token_limit
        built += trusted(fields)
    # Most text bodies take the fast path (the test would pass vacuously otherwise).
    assert built >= len(INPUTS) * len(HISTORY) * len(OPTIONS) // 3


def test_what_only_validation_can_decide_is_validated() -> None:
    plain = _fields({"input": "hi", "instructions": "sys"}, [])
    assert trusted(plain)
    assert not trusted(_fields({"input": "hi", "tools": [{"type": "function", "name": "w"}]}, []))
    assert not trusted(_fields({"input": "hi", "text": {"format": {"type": "json_object"}}}, []))
    assert not trusted({**plain, "messages": [{"role": "tool", "content": "x"}]})
    assert not trusted({**plain, "messages": [{"role": "user", "content": "x", "name": "n"}]})
    assert not trusted({**plain, "messages": [{"role": "user", "content": None}]})
    assert not trusted({**plain, "messages": []})
    assert not trusted({**plain, "stop": "x"})


def test_max_messages_refused_as_validation_refuses_it() -> None:
    fields = _fields({"input": "hi", "instructions": "sys"}, [{"role": "user", "content": "a"}])
    set_chat_limits(2, 2048)
    try:
        assert not trusted(fields)
        with pytest.raises(errors.InvalidRequestError) as built:
            chat_request(fields)
        with pytest.raises(errors.InvalidRequestError) as validated:
            parse_model(ChatRequest, fields)
    finally:
        set_chat_limits(2048, 2048)
    assert built.value.to_dict() == validated.value.to_dict()
    assert built.value.param == "messages"


# A plain request (``ResponsesRequest.is_plain``) of text takes ``plain_chat``: no
# turns, no fields dict, no tool plan. Its options and inputs, each shape of them.
PLAIN_OPTIONS: list[dict[str, Any]] = [
    {},
    {"instructions": "You are a helpful assistant."},
    {"instructions": ""},
    {"instructions": None},
    {"instructions": 'ünï "q" \n'},
    {"model": "openai", "stream": True, "store": False},
    {"model": "", "stream": False, "store": True},
    {"provider": "p", "api_key": "sk-1", "proxy": "http://127.0.0.1:1"},
    {"provider": None, "api_key": None, "proxy": None},  # sent, but null: not chat's
    {"provider": "p", "proxy": None, "instructions": "sys", "stream": True},
]
PLAIN_INPUTS: list[Any] = [
    "Say twenty words.",
    "",
    'ünïcode "quoted" \n and \\ escapes',
    [{"role": "user", "content": "hi"}],
    [{"type": "message", "role": "developer", "content": ""}],
    [
        {"role": "system", "content": "a"},
        {"type": "message", "role": "user", "content": "b", "id": "msg_1", "status": "x"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"},
    ],
]
# Plain requests whose input the general path translates (or refuses).
GENERAL_INPUTS: list[Any] = [
    [],
    [{"role": "user", "content": [{"type": "input_text", "text": "parts"}]}],
    [{"role": "user", "content": "a"}, {"type": "reasoning", "summary": []}],
    [{"role": "tool", "content": "a"}],
    [{"role": ["user"], "content": "a"}],
    [{"type": ["message"], "role": "user", "content": "a"}],
    [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}],
    [{"role": "user", "content": None}],
    [{"content": "no role"}],
]


def _general(body: ResponsesRequest, history: list[dict[str, Any]]) -> Any:
    """What the general path makes of ``body``: its turns and validated chat request, or
    the error it raises."""
    plan = body.tool_plan()
    try:
        turns = history + input_messages(body.input_items(), plan)
        fields = body.chat_fields(turns, plan)
        return turns, fields, parse_model(ChatRequest, orjson.loads(orjson.dumps(fields)))
    except errors.InvalidRequestError as exc:
        return exc.to_dict()


def test_plain_chat_equals_the_validated_translation() -> None:
    cases = itertools.product(PLAIN_INPUTS, PLAIN_OPTIONS)
    for number, (given, options) in enumerate(cases):
        body = parse_model(ResponsesRequest, {"input": given, **options})
        assert body.is_plain()
        assert plain_chat(body) is not None, number
        made = Creation(None, body, [])  # type: ignore[arg-type]  # no request: not stored
        assert made.plan.tools == [] and made.plan.choice is None and not made.plan.dropped
        turns, fields, validated = _general(body, [])
        assert made.turns == turns
        chat = made.chat
        assert _state(chat) == _state(validated), (number, given, options)
        assert _state(chat) == _state(chat_request(fields))
        assert chat.model_dump_json() == validated.model_dump_json()
        assert chat.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
        assert chat.message_dicts() == validated.message_dicts()
        # Its own objects: nothing shared with another request's.
        again = Creation(None, body, []).chat  # type: ignore[arg-type]
        assert again.__dict__ is not chat.__dict__
        assert again.model_fields_set is not chat.model_fields_set
        assert again.__pydantic_extra__ is not chat.__pydantic_extra__
        for one, other in zip(chat.messages, again.messages, strict=True):
            assert one is not other and one.__dict__ is not other.__dict__
            assert one.model_fields_set is not other.model_fields_set
            assert one.__pydantic_extra__ is not other.__pydantic_extra__


def test_anything_else_takes_the_general_path_with_its_answer() -> None:
    for number, (given, options) in enumerate(itertools.product(GENERAL_INPUTS, PLAIN_OPTIONS)):
        body = parse_model(ResponsesRequest, {"input": given, **options})
        assert plain_chat(body) is None, number
        want = _general(body, [])
        try:
            made = Creation(None, body, [])  # type: ignore[arg-type]
        except errors.InvalidRequestError as exc:
            assert exc.to_dict() == want, number
            continue
        turns, _fields, validated = want
        assert made.turns == turns
        assert _state(made.chat) == _state(validated), number
    for raw in (
        {"input": "hi", "temperature": 1},
        {"input": [{"role": "user", "content": "hi"}], "max_output_tokens": 5},
        {"input": "hi", "tools": [{"type": "function", "name": "w", "parameters": {}}]},
        {"input": "hi", "previous_response_id": "resp_1"},
        {"input": "hi", "metadata": {"k": "v"}},
        {"input": "hi", "unknown_field": 1},
    ):
        assert plain_chat(parse_model(ResponsesRequest, raw)) is None, raw
    # A history (a previous response) is the general path's too.
    body = parse_model(ResponsesRequest, {"input": "hi", "instructions": "sys"})
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "a"}]
    made = Creation(None, body, history)  # type: ignore[arg-type]
    turns, _fields, validated = _general(body, history)
    assert made.turns == turns == [*history, {"role": "user", "content": "hi"}]
    assert _state(made.chat) == _state(validated)


@pytest.mark.parametrize("given", ["hi", [{"role": "user", "content": "hi"}]])
def test_plain_chat_over_max_messages_is_refused_as_validation_refuses_it(given: Any) -> None:
    body = parse_model(ResponsesRequest, {"input": given, "instructions": "sys"})
    fields = body.chat_fields([{"role": "user", "content": "hi"}], body.tool_plan())
    set_chat_limits(1, 2048)
    try:
        assert plain_chat(body) is None
        with pytest.raises(errors.InvalidRequestError) as built:
            Creation(None, body, [])  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidRequestError) as validated:
            parse_model(ChatRequest, fields)
        # One message is within the limit: still the plain path.
        assert plain_chat(parse_model(ResponsesRequest, {"input": given})) is not None
    finally:
        set_chat_limits(2048, 2048)
    assert built.value.to_dict() == validated.value.to_dict()
    assert built.value.param == "messages"
