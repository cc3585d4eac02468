"""Request bodies into pydantic models, with errors in the OpenAI shape.

Imported by the routes that take a body (chat, images, audio), so pydantic loads with
the first such request, not at start-up (see ``routes/__init__.py``).
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

from g4f_server import errors
from g4f_server.requests import ChatRequest

M = TypeVar("M", bound=BaseModel)


def validation_error(exc: ValidationError) -> errors.InvalidRequestError:
    """The first problem with its location as ``param`` (e.g. ``messages.0.role``)."""
    problems = exc.errors(include_url=False, include_input=False)
    first = problems[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    message = first["msg"]
    if param:
        message = f"Invalid value for '{param}': {message}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return errors.InvalidRequestError(message, param=param)


def parse_model(model: type[M], data: Any) -> M:
    try:
        # model_validate's own work, without its Python frame (its options are unused).
        return model.__pydantic_validator__.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise validation_error(exc) from None


@functools.cache
def lean_chat() -> SchemaValidator:
    """ChatRequest's validator without its two request-wide checks, ``_options`` and
    ``_within_limits``: for a body shown to pass both without running them (``read_model``
    knows from the body's bytes that its messages and parts are within the limits, and
    sees whether it names an option). Each returns its input unchanged when it passes, so
    this validator gives the same request; they were two calls from pydantic-core into
    Python per request (~6k instructions of ~50k). Built with the first chat body."""
    if not ChatRequest.__pydantic_complete__:  # defer_build
        ChatRequest.model_rebuild()
    checks = {ChatRequest._options.__func__, ChatRequest._within_limits.__func__}
    schema = ChatRequest.__pydantic_core_schema__
    lean = _without(schema, checks)
    # pydantic-core takes a complete model's own (full) validator for its schema node
    # instead of building one: the model reads as incomplete while this one is built.
    ChatRequest.__pydantic_complete__ = False
    try:
        return SchemaValidator(lean, schema.get("config"))
    finally:
        ChatRequest.__pydantic_complete__ = True


def _without(node: Any, checks: set[Any]) -> Any:
    """A copy of a core schema with each function validator calling one of ``checks``
    replaced by the schema it wraps (nothing but its dicts and lists copied)."""
    if isinstance(node, list):
        return [_without(item, checks) for item in node]
    if not isinstance(node, dict):
        return node
    if str(node.get("type", "")).startswith("function-") and "schema" in node:
        function = node["function"]["function"]
        if getattr(function, "__func__", function) in checks:
            return _without(node["schema"], checks)
    return {key: _without(value, checks) for key, value in node.items()}
