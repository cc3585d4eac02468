"""Kept for one release: the shared field types now live in ``g4f_server.requests``."""

from g4f_server.requests import (
    CHAT_OPTIONS,
    IMAGE_OPTIONS,
    ApiKey,
    Rule,
    header_safe,
    typed_extras,
)

__all__ = ["CHAT_OPTIONS", "IMAGE_OPTIONS", "ApiKey", "Rule", "header_safe", "typed_extras"]
