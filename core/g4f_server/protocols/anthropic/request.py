"""The Anthropic Messages request (POST /v1/messages), and how it becomes the
``ChatRequest`` every provider takes. Unknown fields are accepted, as in chat."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from g4f_server import errors
from g4f_server.requests import ApiKey, ChatRequest, _Open
from g4f_server.web.validation import parse_model

# Thinking budgets (tokens) mapped to the OpenAI reasoning effort providers understand.
_EFFORT_BUDGETS = ((4096, "low"), (16384, "medium"))


class AnthropicMessage(_Open):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class ThinkingConfig(_Open):
    """``thinking``: typed, so that a budget that is not a number is a 400 (issue 28: a
    string budget reached a comparison and answered 500)."""

    type: str
    budget_tokens: int | None = Field(default=None, ge=0)


class MessagesRequest(_Open):
    """POST /v1/messages. ``provider``, ``api_key`` and ``proxy`` are gateway fields."""

    model: str = ""
    max_tokens: int = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    thinking: ThinkingConfig | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False
    # Gateway fields (not Anthropic's).
    provider: str | None = None
    api_key: ApiKey | None = None
    proxy: str | None = None

    def to_chat(self) -> ChatRequest:
        messages: list[dict[str, Any]] = []
        system = _system_text(self.system)
        if system:
            messages.append({"role": "system", "content": system})
        for i, message in enumerate(self.messages):
            messages += _chat_messages(i, message)
        fields: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": self.stream,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "stop": self.stop_sequences or None,
            "user": (self.metadata or {}).get("user_id"),
            "provider": self.provider,
            "api_key": self.api_key,
            "proxy": self.proxy,
        }
        if self.tools:
            fields["tools"] = [_chat_tool(i, tool) for i, tool in enumerate(self.tools)]
        if self.tool_choice:
            fields.update(_chat_tool_choice(self.tool_choice))
        if self.thinking is not None and self.thinking.type == "enabled":
            budget = self.thinking.budget_tokens or 0
            effort = next((e for limit, e in _EFFORT_BUDGETS if budget < limit), "high")
            fields["reasoning_effort"] = effort
        return parse_model(ChatRequest, {k: v for k, v in fields.items() if v is not None})


class CountTokensRequest(MessagesRequest):
    """POST /v1/messages/count_tokens: a Messages request without ``max_tokens``."""

    max_tokens: int = Field(default=1, ge=1)


def _system_text(system: str | list[dict[str, Any]] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    texts = []
    for i, block in enumerate(system):
        if block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise errors.InvalidRequestError(
                f"system block {i} must be a text block", param=f"system.{i}"
            )
        texts.append(block["text"])
    return "\n\n".join(texts)


def _unsupported(what: str, kind: Any, param: str) -> errors.InvalidRequestError:
    return errors.InvalidRequestError(
        f"{what} of type {kind!r} are not supported",
        param=param,
        code="unsupported_content",
    )


def _image_url(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if not isinstance(source, dict):  # a list or a string: named, not a 500 (issue 28)
        source = {}
    if source.get("type") == "base64" and source.get("data") and source.get("media_type"):
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif source.get("type") == "url" and source.get("url"):
        url = source["url"]
    else:
        raise errors.InvalidRequestError(
            "an image block needs a base64 source (media_type, data) or a url source",
            param=f"{param}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _result_text(content: Any, param: str) -> str | list[dict[str, Any]]:
    """A tool_result's content: a string, or text (and image) blocks."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise errors.InvalidRequestError(
            "a tool_result's content must be a string or a list of blocks", param=param
        )
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image_url(block, f"{param}.{j}"))
        else:
            raise _unsupported("tool_result blocks", kind, f"{param}.{j}.type")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _chat_messages(i: int, message: AnthropicMessage) -> list[dict[str, Any]]:
    """One Anthropic message as chat messages: tool results become tool messages (before
    the rest of the user's content), tool_use blocks the assistant's tool calls."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(message.content):
        param = f"messages.{i}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise errors.InvalidRequestError("a text block needs 'text'", param=param)
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and message.role == "user":
            parts.append(_image_url(block, param))
        elif kind == "tool_use" and message.role == "assistant":
            if not block.get("id") or not block.get("name"):
                raise errors.InvalidRequestError("a tool_use block needs id and name", param=param)
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        elif kind == "tool_result" and message.role == "user":
            if not block.get("tool_use_id"):
                raise errors.InvalidRequestError(
                    "a tool_result block needs tool_use_id", param=param
                )
            content = _result_text(block.get("content"), f"{param}.content")
            if block.get("is_error") and isinstance(content, str):
                content = f"Error: {content}"
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content})
        elif kind in ("thinking", "redacted_thinking") and message.role == "assistant":
            continue  # the model's earlier reasoning: not forwarded
        else:
            raise _unsupported(f"{message.role} content blocks", kind, f"{param}.type")
    if message.role == "assistant":
        text = "".join(p["text"] for p in parts)
        if text or calls:
            reply: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                reply["tool_calls"] = calls
            out.append(reply)
    elif parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _chat_tool(i: int, tool: dict[str, Any]) -> dict[str, Any]:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise errors.InvalidRequestError(
            f"Tools of type {kind!r} are not supported: only client tools "
            "(name, description, input_schema) are",
            param=f"tools.{i}.type",
            code="unsupported_tool",
        )
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise errors.InvalidRequestError(f"tool {i} needs a string 'name'", param=f"tools.{i}.name")
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = choice.get("type")
    fields: dict[str, Any] = {}
    if choice.get("disable_parallel_tool_use"):
        fields["parallel_tool_calls"] = False
    if kind == "auto":
        fields["tool_choice"] = "auto"
    elif kind == "any":
        fields["tool_choice"] = "required"
    elif kind == "none":
        fields["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        fields["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise errors.InvalidRequestError(
            "tool_choice.type must be 'auto', 'any', 'none' or 'tool' (with a name)",
            param="tool_choice",
        )
    return fields
