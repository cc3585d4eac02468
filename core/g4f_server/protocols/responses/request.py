"""The OpenAI Responses API request (POST /v1/responses), and how it becomes the
``ChatRequest`` every provider takes. Unknown fields are accepted, as in chat."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from g4f_server import errors
from g4f_server.requests import ApiKey, ChatRequest, _Open
from g4f_server.web.validation import parse_model

# Input item types that carry nothing for the upstream: accepted, not forwarded. Tuples,
# not sets: a client's "type" or "role" may be a list or an object, which a set lookup
# cannot hash (a 500, issue 28's fuzzing); a tuple compares.
_SKIPPED_ITEMS = ("reasoning",)
_ROLES = ("user", "assistant", "system", "developer")


class ResponsesRequest(_Open):
    """POST /v1/responses. ``provider``, ``api_key`` and ``proxy`` are gateway fields."""

    model: str = ""
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    reasoning: dict[str, Any] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool = True
    stream: bool = False
    previous_response_id: str | None = None
    # Gateway fields (not OpenAI's).
    provider: str | None = None
    api_key: ApiKey | None = None
    proxy: str | None = None

    def input_items(self) -> list[dict[str, Any]]:
        """``input`` as a list of items (a string is one user message)."""
        if isinstance(self.input, str):
            return [{"type": "message", "role": "user", "content": self.input}]
        return self.input

    def to_chat(self, turns: list[dict[str, Any]]) -> ChatRequest:
        """The chat request providers receive: ``instructions`` as the system message, then
        ``turns`` (chat message dicts: the earlier turns and this request's input)."""
        if not turns:
            raise errors.InvalidRequestError("'input' has no message to answer", param="input")
        system = [{"role": "system", "content": self.instructions}] if self.instructions else []
        fields: dict[str, Any] = {
            "model": self.model,
            "messages": system + turns,
            "stream": self.stream,
            "max_completion_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "user": self.user,
            "parallel_tool_calls": self.parallel_tool_calls,
            "provider": self.provider,
            "api_key": self.api_key,
            "proxy": self.proxy,
        }
        if self.tools:
            fields["tools"] = [_chat_tool(i, tool) for i, tool in enumerate(self.tools)]
        if self.tool_choice is not None:
            fields["tool_choice"] = _chat_tool_choice(self.tool_choice)
        fmt = (self.text or {}).get("format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            fields["response_format"] = _chat_response_format(fmt)
        effort = (self.reasoning or {}).get("effort")
        if effort:
            fields["reasoning_effort"] = effort
        return parse_model(ChatRequest, {k: v for k, v in fields.items() if v is not None})


def input_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses input items as chat messages: function calls join the assistant message
    before them, function call outputs become tool messages."""
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise errors.InvalidRequestError(f"input item {i} must be an object", param="input")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(i, item))
        elif kind == "function_call":
            call = {
                "id": _required(item, "call_id", i),
                "type": "function",
                "function": {
                    "name": _required(item, "name", i),
                    "arguments": item.get("arguments") or "",
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):  # content parts: their text
                output = "\n".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _required(item, "call_id", i),
                    "content": output if isinstance(output, str) else str(output or ""),
                }
            )
        elif kind in _SKIPPED_ITEMS:
            continue
        else:
            raise errors.InvalidRequestError(
                f"input item {i}: items of type {kind!r} are not supported "
                "(supported: message, function_call, function_call_output, reasoning)",
                param=f"input.{i}.type",
                code="unsupported_input_item",
            )
    return messages


def _required(item: dict[str, Any], field: str, i: int) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise errors.InvalidRequestError(
            f"input item {i} needs a string '{field}'", param=f"input.{i}.{field}"
        )
    return value


def _message(i: int, item: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise errors.InvalidRequestError(
            f"input item {i}: role must be one of {sorted(_ROLES)}", param=f"input.{i}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise errors.InvalidRequestError(
            f"input item {i} needs 'content' (a string or a list of parts)",
            param=f"input.{i}.content",
        )
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "refusal"):
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise errors.InvalidRequestError(
                    f"input item {i}, part {j}: a {kind} part needs 'text'",
                    param=f"input.{i}.content.{j}.text",
                )
            parts.append({"type": "text", "text": text})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise errors.InvalidRequestError(
                    f"input item {i}, part {j}: an input_image needs 'image_url' (an http "
                    "URL or a data URI; file ids are not supported)",
                    param=f"input.{i}.content.{j}.image_url",
                    code="unsupported_input_item",
                )
            image: dict[str, Any] = {"url": url}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise errors.InvalidRequestError(
                f"input item {i}, part {j}: content parts of type {kind!r} are not supported "
                "(supported: input_text, input_image, output_text)",
                param=f"input.{i}.content.{j}.type",
                code="unsupported_input_item",
            )
    if role == "assistant" or all(p["type"] == "text" for p in parts):
        # Text only (assistant turns always): one string, as every upstream takes it.
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _chat_tool(i: int, tool: dict[str, Any]) -> dict[str, Any]:
    kind = tool.get("type")
    if kind != "function":
        raise errors.InvalidRequestError(
            f"Tools of type {kind!r} are not supported: only 'function' tools are",
            param=f"tools.{i}.type",
            code="unsupported_tool",
        )
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise errors.InvalidRequestError(f"tool {i} needs a string 'name'", param=f"tools.{i}.name")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice  # "auto", "none", "required"
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise errors.InvalidRequestError(
        f"tool_choice of type {choice.get('type')!r} is not supported "
        "(use 'auto', 'none', 'required' or a function)",
        param="tool_choice",
        code="unsupported_tool",
    )


def _chat_response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
    return {"type": "json_schema", "json_schema": schema}
