"""Kept for one release: the chat request now lives in ``g4f_server.requests`` (the
plugin contract). Plugins that import it from here keep working; new code imports
``g4f_server.requests``."""

from g4f_server.requests import (
    ChatRequest,
    FunctionCall,
    FunctionDef,
    Message,
    ResponseFormat,
    Role,
    StreamOptions,
    Tool,
    ToolCall,
)

__all__ = [
    "ChatRequest",
    "FunctionCall",
    "FunctionDef",
    "Message",
    "ResponseFormat",
    "Role",
    "StreamOptions",
    "Tool",
    "ToolCall",
]
