"""The ``ChatRequest`` a protocol's translated body becomes (Responses, Messages), built
without validating again what the protocol's own model has already validated.

Such a request was validated twice: its own body, then the chat request translated from
it (a Python validator call per message among the second's ~45k instructions, on values
that cannot fail them). When the translation can only give what the chat schema accepts
(text messages of a chat role, fields the protocol's model checked with the chat
schema's types and bounds: each protocol names them, ``trusted``), the chat request is
built as pydantic-core builds it: its instance dict in field order, the fields set, the
extras. Anything else (tools, a response format, content parts, no message, more than
``max_messages``) returns None and the caller validates, which decides the error and its
``param``. ``prompt_chat`` and ``texts_chat`` do the same for a protocol's plain request
of text (Responses' ``plain_chat``) from its model's values, without the fields dict and
message dicts ``built_chat`` reads. tests/protocols/test_responses_prevalidated.py and
test_anthropic_chat_build.py hold the built request equal to the validated one.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from pydantic import BaseModel

from g4f_server.requests import ChatRequest, Message, chat_limits

# A text message's role the chat schema accepts with a string content and nothing else
# ("tool" needs a tool_call_id).
_ROLES = frozenset(("user", "assistant", "system", "developer"))
# How pydantic-core fills a model it validated: its instance dict and three slots of
# BaseModel, set through their descriptors (the model's __setattr__ would validate).
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_IMMUTABLE = (str, bool, int, float, type(None))
M = TypeVar("M", bound=BaseModel)


def _filled(model: type[M], values: dict[str, Any], names: set[str], extra: dict[str, Any]) -> M:
    """A ``model`` as pydantic-core fills one it validated: ``values`` its instance dict
    (every field, in order), ``names`` the fields set, ``extra`` the extras."""
    item = _new(model)
    _set_dict(item, values)
    _set_fields(item, names)
    _set_extra(item, extra)
    _set_private(item, None)
    return item  # type: ignore[no-any-return]


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
                template[name] = None  # set from the body (``messages``, ``role``)
            elif field.default_factory is None and isinstance(field.default, _IMMUTABLE):
                template[name] = field.default
            else:
                return None
        templates.append(template)
    return templates[0], templates[1]


def _text_message(template: dict[str, Any], role: str, content: str) -> Message:
    """A text message of a chat role, as validating ``{"role", "content"}`` builds it."""
    values = template.copy()
    values["role"] = role
    values["content"] = content
    return _filled(Message, values, {"role", "content"}, {})


def built_chat(fields: dict[str, Any], trusted: frozenset[str]) -> ChatRequest | None:
    """The ``ChatRequest`` that validating ``fields`` would give, or None when ``fields``
    is not that plain shape or names a field outside ``trusted`` (then validate them)."""
    templates = _templates()
    messages = fields["messages"]
    if (
        templates is None
        or not trusted.issuperset(fields)
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
        built.append(_text_message(message_values, role, content))
    values = chat_values.copy()
    extra = {}
    for name, value in fields.items():
        if name not in values:
            extra[name] = value  # not a chat field: an extra, kept as it is
            continue
        if type(value) is list and name == "stop":
            value = list(value)  # its own list, as validation makes one
        values[name] = value
    values["messages"] = built
    return _filled(ChatRequest, values, set(fields), extra)


# The chat request's gateway fields, taken as they are when set (each protocol's model
# declares them with the chat schema's types).
GATEWAY_FIELDS = ("provider", "api_key", "proxy")


def prompt_chat(sent: dict[str, Any], system: str | None, user: str) -> ChatRequest | None:
    """The ``ChatRequest`` that validating ``{"model", "messages": [system (if any),
    user], "stream"}`` and the ``GATEWAY_FIELDS`` set (not None) of ``sent`` would give,
    or None (then validate) when the templates cannot be used or two messages are over
    ``max_messages``. ``sent`` is a protocol model's instance dict: its schema checked
    those fields as the chat schema does. ``built_chat`` for the one shape most requests
    have, from the model's values: no fields dict, no message dicts, nothing to check."""
    templates = _templates()
    if templates is None or (system is not None and chat_limits()[0] < 2):
        return None
    chat_values, message_values = templates
    asked = _text_message(message_values, "user", user)
    if system is None:
        return _plain_chat(chat_values, sent, [asked])
    told = _text_message(message_values, "system", system)
    return _plain_chat(chat_values, sent, [told, asked])


def texts_chat(sent: dict[str, Any], texts: list[str]) -> ChatRequest | None:
    """``prompt_chat`` for any number of text messages: ``texts`` holds each one's role
    (one of ``_ROLES``, as the caller checked) and string content in turn."""
    templates = _templates()
    if templates is None or not 0 < len(texts) <= 2 * chat_limits()[0]:
        return None
    chat_values, message_values = templates
    messages = []
    pairs = iter(texts)
    for role, content in zip(pairs, pairs, strict=True):
        messages.append(_text_message(message_values, role, content))
    return _plain_chat(chat_values, sent, messages)


def _plain_chat(
    template: dict[str, Any], sent: dict[str, Any], messages: list[Message]
) -> ChatRequest:
    """The chat request of ``sent``'s model, stream and gateway fields, and ``messages``."""
    values = template.copy()
    values["model"] = sent["model"]
    values["messages"] = messages
    values["stream"] = sent["stream"]
    names = {"model", "messages", "stream"}
    for name in GATEWAY_FIELDS:
        if (value := sent[name]) is not None:
            values[name] = value
            names.add(name)
    return _filled(ChatRequest, values, names, {})
