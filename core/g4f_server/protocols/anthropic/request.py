"""The Anthropic Messages request (POST /v1/messages), and how it becomes the
``ChatRequest`` every provider takes. Unknown fields are accepted, as in chat.

What Claude Code and the SDKs send beyond the basics (docs/api.md, "Claude Code"):

- honoured: ``system`` entries inside ``messages`` (a system message at that point),
  ``thinking`` (enabled with a budget, or adaptive) and ``output_config.effort`` (as the
  reasoning effort), ``output_format`` / ``output_config.format`` (a JSON schema, as
  chat's ``response_format``), ``tool_choice``, ``metadata.user_id`` (chat's ``user``),
  ``strict`` on a tool;
- ignored (accepted, the provider never sees them): ``cache_control`` (top level and on
  any block), ``context_management`` (the whole context is forwarded), ``container``,
  ``mcp_servers``, ``service_tier``, ``inference_geo``, ``speed``, ``thinking.display``,
  a tool's ``defer_loading``, ``input_examples``, ``allowed_callers`` and
  ``eager_input_streaming``; the ``anthropic-beta`` header;
- dropped: tools the gateway cannot run (Anthropic's server and versioned tools, such
  as ``web_search_20250305``), named in the ``X-G4F-Dropped-Tools`` header and a log
  line; a ``tool_choice`` that forces one of them is a 400 naming it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field

from g4f_server import errors
from g4f_server.protocols.prevalidated import built_chat
from g4f_server.requests import ApiKey, ChatRequest, _Open, chat_limits
from g4f_server.web.validation import parse_model

# Thinking budgets (tokens) mapped to the OpenAI reasoning effort providers understand.
_EFFORT_BUDGETS = ((4096, "low"), (16384, "medium"))
# Anthropic's effort levels (output_config.effort) as OpenAI reasoning efforts: the two
# above "high" have no OpenAI counterpart that every upstream takes.
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
# Fields the chat request takes under the same name, when sent (not None).
# The translated fields the Messages schema checked to be what the chat schema asks (the
# same types, ranges within chat's; top_k and reasoning_effort are extras): taken without
# a second validation when the messages are plain text (protocols/prevalidated.py).
CHAT_TRUSTED = frozenset(
    {"model", "messages", "stream", "max_tokens", "temperature", "top_p", "provider"}
    | {"api_key", "proxy", "stop", "user", "top_k", "reasoning_effort"}
)
_CHAT_FIELDS = ("temperature", "top_p", "top_k", "provider", "api_key", "proxy")
# Content blocks of earlier turns that record what Anthropic's servers ran (server tools,
# MCP connector, code execution): the gateway ran none of them, the provider is not shown.
_SERVER_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)


# A dropped tool's name travels in a response header: anything but these characters is
# replaced, so a client's name can never break (or add to) the headers.
_UNSAFE_IN_HEADER = re.compile(r"[^A-Za-z0-9_.:-]")


class AnthropicMessage(_Open):
    # "system": a system message at this point of the conversation (Anthropic documents
    # system entries inside messages; Claude Code sends one).
    role: Literal["user", "assistant", "system"]
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
    output_config: dict[str, Any] | None = None
    output_format: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False
    # Accepted and ignored (module docstring): declared so that OpenAPI lists them.
    cache_control: dict[str, Any] | None = None
    context_management: dict[str, Any] | None = None
    container: str | dict[str, Any] | None = None
    mcp_servers: list[dict[str, Any]] | None = None
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    # Gateway fields (not Anthropic's).
    provider: str | None = None
    api_key: ApiKey | None = None
    proxy: str | None = None

    @property
    def dropped_tools(self) -> list[str]:
        """The tools left out of what the provider sees (type or name), for the header.
        Worked out when asked, not kept: a private attribute costs every request ~11 k
        instructions (pydantic sets it up for each instance)."""
        return [_dropped_name(t) for t in self.tools or () if isinstance(t, dict) and not _kept(t)]

    def to_chat(self) -> ChatRequest:
        fields = self.chat_fields()
        # Built from parts already checked when it is the plain shape (prevalidated.py).
        return built_chat(fields, CHAT_TRUSTED) or parse_model(ChatRequest, fields)

    def chat_fields(self) -> dict[str, Any]:
        """The chat request's fields, as sent to the chat schema."""
        # Read from __dict__, and only the fields sent set: the chat schema's defaults are
        # the same (None), and a dict comprehension over a dozen Nones cost more.
        sent = self.__dict__
        messages: list[dict[str, Any]] = []
        system = sent["system"]
        if type(system) is str:  # (a list of blocks: the general way)
            if system:
                messages.append({"role": "system", "content": system})
            # A user's or an assistant's text (most messages) here, without a call; no
            # blocks, so within max_content_parts.
            for message in sent["messages"]:
                role, content = (entry := message.__dict__)["role"], entry["content"]
                if type(content) is not str or role == "system":
                    messages = _messages(sent)
                    break
                messages.append({"role": role, "content": content})
        else:
            messages = _messages(sent)
        fields: dict[str, Any] = {
            "model": sent["model"],
            "messages": messages,
            "stream": sent["stream"],
            "max_tokens": sent["max_tokens"],
        }
        if not _USUAL.issuperset(self.__pydantic_fields_set__):  # an option was sent
            _options(sent, fields)
        return fields


# The fields of most bodies, all in the chat fields already: no option to translate.
_USUAL = frozenset({"model", "max_tokens", "system", "messages", "stream"})


def _messages(sent: dict[str, Any]) -> list[dict[str, Any]]:
    """The system text and the messages as chat messages, within max_content_parts."""
    sent_messages = sent["messages"]
    _within_parts(sent_messages)
    messages: list[dict[str, Any]] = []
    system = _system_text(sent["system"], "system")
    if system:
        messages.append({"role": "system", "content": system})
    for i, message in enumerate(sent_messages):
        # A user's or an assistant's text (most messages) here, without a call.
        role, content = (entry := message.__dict__)["role"], entry["content"]
        if type(content) is str and role != "system":
            messages.append({"role": role, "content": content})
        else:
            messages += _chat_messages(i, message)
    return messages


def _options(sent: dict[str, Any], fields: dict[str, Any]) -> None:
    """The options sent, as the chat request's fields (into ``fields``)."""
    for name in _CHAT_FIELDS:
        if (value := sent[name]) is not None:
            fields[name] = value
    if sent["stop_sequences"]:
        fields["stop"] = sent["stop_sequences"]
    metadata = sent["metadata"]
    if metadata and (user := _user_id(metadata.get("user_id"))) is not None:
        fields["user"] = user
    if sent["tools"]:
        tools, dropped = _chat_tools(sent["tools"])
        if tools:
            fields["tools"] = tools
        if sent["tool_choice"]:
            fields.update(_chat_tool_choice(sent["tool_choice"], tools, dropped))
    elif sent["tool_choice"]:
        fields.update(_chat_tool_choice(sent["tool_choice"], [], []))
    thinking, config = sent["thinking"], sent["output_config"]
    if thinking is not None or config:
        thinking = thinking.model_dump(exclude_none=True) if thinking else None
        effort = _reasoning_effort(thinking, config)
        if effort:
            fields["reasoning_effort"] = effort
    fmt = sent["output_format"] or (config.get("format") if config else None)
    if fmt:
        fields["response_format"] = _response_format(fmt)


def _user_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _reasoning_effort(thinking: dict[str, Any] | None, config: dict[str, Any] | None) -> str:
    """The reasoning effort to ask for: ``output_config.effort`` when given, else one
    from an enabled thinking budget; none when thinking is disabled (or adaptive without
    an effort: the provider's default)."""
    kind = (thinking or {}).get("type")
    if kind == "disabled":
        return ""
    effort = (config or {}).get("effort")
    if isinstance(effort, str) and effort in _EFFORTS:
        return _EFFORTS[effort]
    if effort is not None:
        raise errors.InvalidRequestError(
            f"output_config.effort must be one of {', '.join(_EFFORTS)}",
            param="output_config.effort",
        )
    if kind == "enabled":
        budget = (thinking or {}).get("budget_tokens")
        budget = budget if isinstance(budget, int) else 0
        return next((e for limit, e in _EFFORT_BUDGETS if budget < limit), "high")
    return ""


def _response_format(fmt: Any) -> dict[str, Any]:
    """Structured outputs (``{"type": "json_schema", "schema": {...}}``) as chat's
    ``response_format``."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise errors.InvalidRequestError(
            "output_format must be {'type': 'json_schema', 'schema': {...}}",
            param="output_format",
        )
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise errors.InvalidRequestError(
            "output_format needs a JSON schema object in 'schema'", param="output_format.schema"
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


class CountTokensRequest(MessagesRequest):
    """POST /v1/messages/count_tokens: a Messages request without ``max_tokens``."""

    max_tokens: int = Field(default=1, ge=1)


def _system_text(system: str | list[dict[str, Any]] | None, param: str) -> str:
    """System text: a string or text blocks (their ``cache_control`` is ignored)."""
    if system is None or isinstance(system, str):
        return system or ""
    texts = []
    for i, block in enumerate(system):
        if block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise errors.InvalidRequestError(
                f"{param} block {i} must be a text block", param=f"{param}.{i}"
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
        elif kind in ("tool_reference", "search_result", "document"):
            parts.append({"type": "text", "text": _block_text(block, f"{param}.{j}")})
        else:
            raise _unsupported("tool_result blocks", kind, f"{param}.{j}.type")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _block_text(block: dict[str, Any], param: str) -> str:
    """The text of a block that the provider gets as text: a tool search's
    ``tool_reference`` (the tool is already in the list the provider sees), a
    ``search_result``, a plain-text ``document``."""
    kind = block.get("type")
    if kind == "tool_reference":
        return f"Tool {block.get('tool_name', '')!s} is available."
    if kind == "search_result":
        texts = [b.get("text", "") for b in block.get("content") or [] if isinstance(b, dict)]
        head = " ".join(str(block.get(k) or "") for k in ("title", "source")).strip()
        return "\n".join([head, *map(str, texts)]).strip()
    source = block.get("source") or {}
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return str(source["data"])
    if source.get("type") == "content" and isinstance(source.get("content"), list):
        return "\n".join(str(b.get("text", "")) for b in source["content"] if isinstance(b, dict))
    raise errors.InvalidRequestError(
        f"Only plain-text documents are supported (source type {source.get('type')!r})",
        param=f"{param}.source",
        code="unsupported_content",
    )


def _within_parts(messages: list[AnthropicMessage]) -> None:
    """``max_content_parts`` on the blocks as sent: the conversion below merges text
    blocks, so the chat schema's own count would let 5,000 of them through."""
    blocks = 0
    for message in messages:  # (a loop: a generator's frame cost more than the count)
        if type(content := message.__dict__["content"]) is list:
            blocks += len(content)
    if blocks and blocks > (limit := chat_limits()[1]):
        raise errors.InvalidRequestError(
            f"at most {limit} content blocks are allowed in all messages together "
            "(max_content_parts)",
            param="messages",
        )


def _chat_messages(i: int, message: AnthropicMessage) -> list[dict[str, Any]]:
    """One Anthropic message as chat messages: tool results become tool messages (before
    the rest of the user's content), tool_use blocks the assistant's tool calls, a
    system entry a system message at this point."""
    # Read from __dict__: a pydantic attribute read takes __getattr__'s slow path.
    sent = message.__dict__
    role, content = sent["role"], sent["content"]
    if role == "system":
        text = _system_text(content, f"messages.{i}.content")
        return [{"role": "system", "content": text}] if text else []
    if type(content) is str:  # most messages
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        param = f"messages.{i}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise errors.InvalidRequestError("a text block needs 'text'", param=param)
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and role == "user":
            parts.append(_image_url(block, param))
        elif kind in ("document", "search_result") and role == "user":
            parts.append({"type": "text", "text": _block_text(block, param)})
        elif kind == "tool_use" and role == "assistant":
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
        elif kind == "tool_result" and role == "user":
            if not block.get("tool_use_id"):
                raise errors.InvalidRequestError(
                    "a tool_result block needs tool_use_id", param=param
                )
            result = _result_text(block.get("content"), f"{param}.content")
            if block.get("is_error") and isinstance(result, str):
                result = f"Error: {result}"
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": result})
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # the model's earlier reasoning: not forwarded
        elif isinstance(kind, str) and kind in _SERVER_BLOCKS:  # (a list "type": unhashable)
            continue  # what Anthropic's servers would have run: the gateway ran none
        else:
            raise _unsupported(f"{role} content blocks", kind, f"{param}.type")
    if role == "assistant":
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


def _chat_tools(tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Client tools as chat function tools, and the names of the tools dropped: those
    with a versioned ``type`` (Anthropic's server tools, web search, code execution, and
    the Anthropic-defined client tools such as ``bash_20250124``), which the gateway
    cannot run or describe to another model."""
    out, dropped = [], []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise errors.InvalidRequestError(f"tool {i} must be an object", param=f"tools.{i}")
        if _kept(tool):
            out.append(_chat_tool(i, tool))
        else:
            dropped.append(_dropped_name(tool))
    return out, dropped


def _kept(tool: dict[str, Any]) -> bool:
    return tool.get("type") in (None, "custom")


def _dropped_name(tool: dict[str, Any]) -> str:
    return _UNSAFE_IN_HEADER.sub("_", str(tool.get("name") or tool.get("type"))[:128])


def _chat_tool(i: int, tool: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise errors.InvalidRequestError(f"tool {i} needs a string 'name'", param=f"tools.{i}.name")
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _chat_tool_choice(
    choice: dict[str, Any], tools: list[dict[str, Any]], dropped: list[str]
) -> dict[str, Any]:
    kind = choice.get("type")
    fields: dict[str, Any] = {}
    if choice.get("disable_parallel_tool_use"):
        fields["parallel_tool_calls"] = False
    if kind == "auto":
        fields["tool_choice"] = "auto"
    elif kind == "any":
        if not tools and dropped:
            raise errors.InvalidRequestError(
                f"tool_choice 'any' forces a tool, and the gateway cannot run "
                f"{', '.join(dropped)}: only client tools (name, description, input_schema) are",
                param="tool_choice",
                code="unsupported_tool",
            )
        fields["tool_choice"] = "required"
    elif kind == "none":
        fields["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        if choice["name"] in dropped:
            raise errors.InvalidRequestError(
                f"tool_choice forces the tool {choice['name']!r}, which the gateway cannot "
                "run: only client tools (name, description, input_schema) are",
                param="tool_choice.name",
                code="unsupported_tool",
            )
        fields["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise errors.InvalidRequestError(
            "tool_choice.type must be 'auto', 'any', 'none' or 'tool' (with a name)",
            param="tool_choice",
        )
    if not tools:  # only dropped tools: nothing to choose from
        fields.pop("tool_choice", None)
        fields.pop("parallel_tool_calls", None)
    return fields
