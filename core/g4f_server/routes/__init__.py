"""HTTP routes, one module per resource. Each module exposes ``add_routes(app)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel


def request_body(
    model: type[BaseModel], content_type: str = "application/json"
) -> Callable[[Any], Any]:
    """Mark a handler's request body schema (read by the OpenAPI generator)."""

    def mark(handler: Any) -> Any:
        handler.request_body = (model, content_type)
        return handler

    return mark


def setup_routes(app: web.Application) -> None:
    from g4f_server.routes import (
        audio,
        chat,
        cookies,
        docs,
        health,
        images,
        media_files,
        models,
        providers,
    )

    for module in (health, chat, models, providers, images, audio, media_files, cookies, docs):
        module.add_routes(app)
