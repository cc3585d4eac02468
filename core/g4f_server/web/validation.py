"""Request bodies into pydantic models, with errors in the OpenAI shape.

Imported by the routes that take a body (chat, images, audio), so pydantic loads with
the first such request, not at start-up (see ``routes/__init__.py``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from g4f_server import errors

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
