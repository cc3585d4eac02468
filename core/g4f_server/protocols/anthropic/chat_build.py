"""The ``ChatRequest`` of a Messages body, built from the parts the Messages schema and its
translation (``request.py``) have already checked, instead of validated a second time.

Validating the translated fields again ran every chat validator (a Python call per
message for its parts and its role's fields) on values that cannot fail them: each one
was checked on its way in. Only the plain shape is built here, text messages and the
fields below; anything else (tools, a tool choice, a response format, content parts,
tool calls, tool results) returns None and is validated as before, so a refusal the chat
schema would give (no message left after translation, too many messages) is still its
own. ``tests/protocols/test_anthropic_chat_build.py`` holds every built request equal to
the validated one, field by field, over many bodies.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from g4f_server.requests import ChatRequest, Message, chat_limits

# The translated fields that can be taken as they are: already checked by the Messages
# schema to be what the chat schema asks (the same types, ranges within chat's).
_PLAIN = frozenset(
    {"model", "messages", "stream", "max_tokens", "temperature", "top_p", "provider"}
    | {"api_key", "proxy", "stop", "user", "top_k", "reasoning_effort"}
)
_EXTRA = ("top_k", "reasoning_effort")  # not chat fields: extras, as validation keeps them
_FLOATS = ("temperature", "top_p")
_ROLE_AND_CONTENT = frozenset({"role", "content"})
_MESSAGE_FIELDS_SET = frozenset({"role", "content"})

# pydantic's own __setattr__ validates: a model's slots are set through their descriptors
# (as its model_construct does).
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
_chat_defaults: dict[str, Any] = {}


def built_chat(fields: dict[str, Any]) -> ChatRequest | None:
    """The ``ChatRequest`` that validating ``fields`` would give, or None when ``fields``
    is not the plain shape (then the caller validates them)."""
    if not fields.keys() <= _PLAIN:
        return None
    messages = fields["messages"]
    if not messages or len(messages) > chat_limits()[0]:
        return None  # the chat schema's own refusal
    built = []
    for message in messages:
        content = message["content"]
        if type(content) is not str or message.keys() != _ROLE_AND_CONTENT:
            return None
        item = Message.__new__(Message)
        _SET_DICT(
            item,
            {
                "role": message["role"],
                "content": content,
                "name": None,
                "tool_calls": None,
                "tool_call_id": None,
            },
        )
        _SET_FIELDS(item, set(_MESSAGE_FIELDS_SET))
        _SET_EXTRA(item, {})
        _SET_PRIVATE(item, None)
        built.append(item)
    values = (_chat_defaults or _defaults()).copy()  # in the schema's order, as validated
    extra = {}
    for name, value in fields.items():
        if name in _EXTRA:
            extra[name] = value
        elif name in _FLOATS:
            values[name] = float(value)  # (a whole number, as the chat schema keeps it)
        else:
            values[name] = value
    values["messages"] = built
    if (stop := fields.get("stop")) is not None:
        values["stop"] = list(stop)  # its own list, as validation makes one
    chat = ChatRequest.__new__(ChatRequest)
    _SET_DICT(chat, values)
    _SET_FIELDS(chat, set(fields))
    _SET_EXTRA(chat, extra)
    _SET_PRIVATE(chat, None)
    return chat


def _defaults() -> dict[str, Any]:
    """Every chat field's default, in the schema's order (all of them immutable)."""
    _chat_defaults.update((name, info.default) for name, info in ChatRequest.model_fields.items())
    return _chat_defaults
