"""The ``ChatRequest`` of a Responses body, built without validating again what the
``ResponsesRequest`` model has already validated.

A Responses request was validated twice: its own body, then the chat request translated
from it (~45k instructions of the second for a plain text request, a Python validator
call per message among them). When the translation can only give what the chat schema
accepts (text messages of a known role, fields the Responses model checked with the same
bounds, no tools or response format, within ``max_messages``), the chat request is built
as pydantic-core builds it (``__dict__``, the fields set, the extras). Anything else is
validated as before, which decides its error and ``param``. tests/protocols/
test_responses_prevalidated.py holds the two ways equal over many bodies.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from g4f_server.requests import ChatRequest, Message, chat_limits
from g4f_server.web.validation import parse_model

# What a text message's role can be after the translation (request._ROLES): each one a
# chat ``Role`` whose message a string content satisfies.
_ROLES = ("user", "assistant", "system", "developer")
# The chat fields the translation may set whose Responses field was validated to the same
# type and bounds (max_output_tokens -> max_completion_tokens, user or safety_identifier
# -> user), and the one extra it sets (``reasoning_effort``: an extra field is kept as is).
_TRUSTED = frozenset(
    (
        "model",
        "messages",
        "stream",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "parallel_tool_calls",
        "provider",
        "api_key",
        "proxy",
        "user",
        "reasoning_effort",
    )
)
# How pydantic-core fills a model it validated: its instance dict and three slots of
# BaseModel, set through their descriptors (``object.__setattr__`` looks each one up).
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_IMMUTABLE = (str, bool, int, float, type(None))


@functools.cache
def _templates() -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Each model's fields in declaration order with their defaults; None (validate
    every request) if a field's default is mutable or made by a factory, which one
    template would share between requests."""
    templates = []
    for model in (ChatRequest, Message):
        if not model.__pydantic_complete__:  # defer_build: its schema made on first use
            model.model_rebuild()
        template: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            if field.is_required():
                template[name] = None  # set from the message (``messages``, ``role``)
            elif field.default_factory is None and isinstance(field.default, _IMMUTABLE):
                template[name] = field.default
            else:
                return None
        templates.append(template)
    return templates[0], templates[1]


def trusted(fields: dict[str, Any]) -> bool:
    """Whether ``chat_request`` builds ``fields`` without validating them."""
    return _built(fields) is not None


def chat_request(fields: dict[str, Any]) -> ChatRequest:
    """``parse_model(ChatRequest, fields)``, without the validation when ``fields`` (a
    translated Responses body) can only be valid and each value taken as it is."""
    made = _built(fields)
    return parse_model(ChatRequest, fields) if made is None else made


def _built(fields: dict[str, Any]) -> ChatRequest | None:
    templates = _templates()
    messages = fields["messages"]
    if (
        templates is None
        or not _TRUSTED.issuperset(fields)
        or not 0 < len(messages) <= chat_limits()[0]
    ):
        return None
    chat_values, message_values = templates
    built = []
    for message in messages:
        if (
            type(message) is not dict
            or len(message) != 2
            or type(content := message.get("content")) is not str
            or (role := message.get("role")) not in _ROLES
        ):
            return None
        values = message_values.copy()
        values["role"] = role
        values["content"] = content
        item = _new(Message)
        _set_dict(item, values)
        _set_fields(item, {"role", "content"})
        _set_extra(item, {})
        _set_private(item, None)
        built.append(item)
    values = chat_values.copy()
    extra = {}
    for name, value in fields.items():
        if name in values:
            values[name] = value
        else:
            extra[name] = value
    values["messages"] = built
    chat = _new(ChatRequest)
    _set_dict(chat, values)
    _set_fields(chat, set(fields))
    _set_extra(chat, extra)
    _set_private(chat, None)
    return chat
