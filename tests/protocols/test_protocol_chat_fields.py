"""The chat request a Responses or Messages body becomes: exactly the fields it sent (a
provider that forwards ``model_fields_set`` or the extras must see no more and no less),
whichever way the conversion builds them."""

from __future__ import annotations

from typing import Any

import pytest

from g4f_server import errors
from g4f_server.protocols.anthropic.request import MessagesRequest
from g4f_server.protocols.responses.request import ResponsesRequest, input_messages

_MESSAGES_MIN = {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
_RESPONSES_MIN = {"input": "hi"}


def _messages_chat(body: dict[str, Any]) -> Any:
    return MessagesRequest.model_validate(body).to_chat()


def _responses_chat(body: dict[str, Any]) -> Any:
    request = ResponsesRequest.model_validate(body)
    plan = request.tool_plan()
    return request.to_chat(input_messages(request.input_items(), plan), plan)


@pytest.mark.parametrize(
    ("extra", "fields_set", "values"),
    [
        ({}, {"model", "messages", "stream", "max_tokens"}, {"stop": None, "user": None}),
        (
            {
                "temperature": 0.5,
                "top_p": 0.9,
                "top_k": 5,
                "stop_sequences": ["X"],
                "metadata": {"user_id": "u1"},
                "provider": "p",
                "api_key": "k",
                "proxy": "http://127.0.0.1:1",
                "thinking": {"type": "enabled", "budget_tokens": 2048},
                "output_format": {"type": "json_schema", "schema": {"type": "object"}},
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            },
            {
                "model",
                "messages",
                "stream",
                "max_tokens",
                "temperature",
                "top_p",
                "top_k",
                "stop",
                "user",
                "provider",
                "api_key",
                "proxy",
                "reasoning_effort",
                "response_format",
                "tools",
                "tool_choice",
                "parallel_tool_calls",
            },
            {"stop": ["X"], "user": "u1", "tool_choice": "required", "parallel_tool_calls": False},
        ),
        # Empty values the conversion leaves out, as before.
        (
            {"stop_sequences": [], "metadata": {"user_id": ""}, "tools": [], "output_config": {}},
            None,
            {},
        ),
        # Only dropped (server) tools: nothing to choose from, no tools, no choice.
        (
            {
                "tools": [{"type": "web_search_20250305", "name": "web"}],
                "tool_choice": {"type": "auto"},
            },
            {"model", "messages", "stream", "max_tokens"},
            {"tools": None, "tool_choice": None},
        ),
    ],
)
def test_messages_chat_has_the_fields_sent(
    extra: dict[str, Any], fields_set: set[str] | None, values: dict[str, Any]
) -> None:
    chat = _messages_chat({**_MESSAGES_MIN, **extra})
    expected = fields_set or {"model", "messages", "stream", "max_tokens"}
    assert chat.model_fields_set == expected
    for name, value in values.items():
        assert getattr(chat, name) == value
    if "top_k" in extra:
        assert chat.model_extra == {"top_k": 5, "reasoning_effort": "low"}


def test_messages_effort_checked_only_when_sent() -> None:
    with pytest.raises(errors.InvalidRequestError) as caught:
        _messages_chat({**_MESSAGES_MIN, "output_config": {"effort": "huge"}})
    assert caught.value.param == "output_config.effort"
    disabled = _messages_chat({**_MESSAGES_MIN, "thinking": {"type": "disabled"}})
    assert "reasoning_effort" not in (disabled.model_extra or {})


@pytest.mark.parametrize(
    ("extra", "fields_set", "values"),
    [
        ({}, {"model", "messages", "stream"}, {"user": None}),
        (
            {
                "instructions": "be brief",
                "max_output_tokens": 9,
                "temperature": 1.5,
                "top_p": 0.5,
                "presence_penalty": 1,
                "frequency_penalty": -1,
                "parallel_tool_calls": False,
                "safety_identifier": "s1",
                "provider": "p",
                "api_key": "k",
                "proxy": "http://127.0.0.1:1",
                "text": {"format": {"type": "json_object"}},
                "reasoning": {"effort": "high"},
                "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
                "tool_choice": "required",
            },
            {
                "model",
                "messages",
                "stream",
                "max_completion_tokens",
                "temperature",
                "top_p",
                "presence_penalty",
                "frequency_penalty",
                "parallel_tool_calls",
                "user",
                "provider",
                "api_key",
                "proxy",
                "response_format",
                "reasoning_effort",
                "tools",
                "tool_choice",
            },
            {"user": "s1", "max_completion_tokens": 9, "tool_choice": "required"},
        ),
        # A plain request (nothing but the gateway's fields besides its own): the same.
        (
            {"instructions": "x", "store": True, "provider": "p", "api_key": "k"},
            {"model", "messages", "stream", "provider", "api_key"},
            {"provider": "p", "api_key": "k", "proxy": None},
        ),
        # An empty user and safety identifier: sent, so kept (as before).
        (
            {"user": "", "safety_identifier": ""},
            {"model", "messages", "stream", "user"},
            {"user": ""},
        ),
    ],
)
def test_responses_chat_has_the_fields_sent(
    extra: dict[str, Any], fields_set: set[str], values: dict[str, Any]
) -> None:
    chat = _responses_chat({**_RESPONSES_MIN, **extra})
    assert chat.model_fields_set == fields_set
    for name, value in values.items():
        assert getattr(chat, name) == value
    roles = [m.role for m in chat.messages]
    assert roles == (["system", "user"] if "instructions" in extra else ["user"])
