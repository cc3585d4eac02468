"""The OpenAI Responses API request (POST /v1/responses), and how it becomes the
``ChatRequest`` every provider takes. Unknown fields are accepted, as in chat."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from g4f_server import errors
from g4f_server.protocols.prevalidated import GATEWAY_FIELDS, built_chat, prompt_chat, texts_chat
from g4f_server.protocols.responses import compaction
from g4f_server.protocols.responses.files import file_text
from g4f_server.protocols.responses.tools import ToolPlan, custom_arguments, plan_tools
from g4f_server.requests import ApiKey, ChatRequest, _Open
from g4f_server.web.validation import parse_model

# Input item types that carry nothing for the upstream: accepted, not forwarded. Tuples,
# not sets: a client's "type" or "role" may be a list or an object, which a set lookup
# cannot hash (a 500, issue 28's fuzzing); a tuple compares.
_SKIPPED_ITEMS = ("reasoning",)
_SUPPORTED_ITEMS = (
    "message, function_call, function_call_output, custom_tool_call, "
    "custom_tool_call_output, compaction, reasoning"
)
_ROLES = ("user", "assistant", "system", "developer")
# Fields the chat request takes under the same name, when sent (not None).
# The chat fields the translation may set whose Responses field was validated to the same
# type and bounds (max_output_tokens -> max_completion_tokens, user or safety_identifier
# -> user), and the one extra it sets (``reasoning_effort``): taken without a second
# validation when the messages are plain text (protocols/prevalidated.py).
CHAT_TRUSTED = frozenset(
    {"model", "messages", "stream", "max_completion_tokens", "temperature", "top_p"}
    | {"presence_penalty", "frequency_penalty", "parallel_tool_calls", "provider"}
    | {"api_key", "proxy", "user", "reasoning_effort"}
)
_CHAT_FIELDS = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "parallel_tool_calls",
    "provider",
    "api_key",
    "proxy",
)


# The fields of a plain request (``ResponsesRequest.is_plain``).
PLAIN_FIELDS = frozenset(("model", "input", "instructions", "stream", "store", *GATEWAY_FIELDS))


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
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tool_calls: int | None = Field(default=None, ge=1)
    reasoning: dict[str, Any] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: str | None = None
    truncation: str | None = None
    background: bool | None = None
    metadata: dict[str, str] | None = None
    store: bool = True
    stream: bool = False
    previous_response_id: str | None = None
    # Gateway fields (not OpenAI's).
    provider: str | None = None
    api_key: ApiKey | None = None
    proxy: str | None = None

    def is_plain(self) -> bool:
        """Whether the request sets nothing but its model, input, instructions, ``stream``,
        ``store`` and the gateway's fields (most requests): no tool, option or other
        field of the response echoes or translates."""
        return PLAIN_FIELDS.issuperset(self.__pydantic_fields_set__)

    def input_items(self) -> list[dict[str, Any]]:
        """``input`` as a list of items (a string is one user message)."""
        if isinstance(self.input, str):
            return [{"type": "message", "role": "user", "content": self.input}]
        return self.input

    def tool_plan(self) -> ToolPlan:
        """The tools for the provider (hosted tools dropped); a 400 for what cannot be."""
        sent = self.__dict__  # pydantic's __getattr__ makes attribute reads the slow kind
        if sent["background"]:
            raise errors.InvalidRequestError(
                "'background' responses are not supported by this gateway: send the "
                "request without it (stream it to see progress)",
                param="background",
                code="unsupported_parameter",
            )
        return plan_tools(sent["tools"], sent["tool_choice"])

    def to_chat(self, turns: list[dict[str, Any]], plan: ToolPlan | None = None) -> ChatRequest:
        """The chat request providers receive: ``instructions`` as the system message, then
        ``turns`` (chat message dicts: the earlier turns and this request's input)."""
        fields = self.chat_fields(turns, plan)
        # Built from parts already checked when it is the plain shape (prevalidated.py).
        return built_chat(fields, CHAT_TRUSTED) or parse_model(ChatRequest, fields)

    def chat_fields(
        self, turns: list[dict[str, Any]], plan: ToolPlan | None = None
    ) -> dict[str, Any]:
        """The chat request's fields (``to_chat`` before the chat model)."""
        if not turns:
            raise errors.InvalidRequestError("'input' has no message to answer", param="input")
        # Read from __dict__, and only the fields sent set: the chat schema's defaults are
        # the same (None), and a dict comprehension over a dozen Nones cost more.
        sent = self.__dict__
        instructions = sent["instructions"]
        messages = [{"role": "system", "content": instructions}, *turns] if instructions else turns
        fields: dict[str, Any] = {
            "model": sent["model"],
            "messages": messages,
            "stream": sent["stream"],
        }
        if self.is_plain():  # most requests: nothing else to translate
            for name in GATEWAY_FIELDS:
                if (value := sent[name]) is not None:
                    fields[name] = value
            return fields
        plan = plan if plan is not None else self.tool_plan()
        if sent["max_output_tokens"] is not None:
            fields["max_completion_tokens"] = sent["max_output_tokens"]
        for name in _CHAT_FIELDS:
            if (value := sent[name]) is not None:
                fields[name] = value
        user = sent["user"] or sent["safety_identifier"]
        if user is not None:
            fields["user"] = user
        if plan.tools:
            fields["tools"] = plan.tools
        if plan.choice is not None:
            fields["tool_choice"] = plan.choice
        fmt = (sent["text"] or {}).get("format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            fields["response_format"] = _chat_response_format(fmt)
        effort = (sent["reasoning"] or {}).get("effort")
        if effort:
            fields["reasoning_effort"] = effort
        return fields


def plain_chat(body: ResponsesRequest) -> ChatRequest | None:
    """The chat request of a plain request (``is_plain``) whose input is a string or text
    messages (most requests), built from the model's values without the turns, the
    fields dict and the checks of ``to_chat`` (a function: pydantic's ``__getattr__``
    makes a method lookup the slow kind); None for any other request, or when
    validation has to decide (its error)."""
    sent = body.__dict__
    if not PLAIN_FIELDS.issuperset(body.__pydantic_fields_set__):
        return None
    text = sent["input"]
    if type(text) is str:
        return prompt_chat(sent, sent["instructions"] or None, text)
    if not text:  # no message to answer: the general path's 400
        return None
    texts = ["system", sent["instructions"]] if sent["instructions"] else []
    for item in text:
        # A message item of a role and a string (what input_messages makes a chat message
        # as it is); anything else (parts, calls, reasoning) is the general path's.
        if (
            type(item) is not dict
            or item.get("type", "message") != "message"
            or (role := item.get("role")) not in _ROLES
            or type(content := item.get("content")) is not str
        ):
            return None
        texts += (role, content)
    return texts_chat(sent, texts)


def input_messages(
    items: list[dict[str, Any]], plan: ToolPlan | None = None
) -> list[dict[str, Any]]:
    """Responses input items as chat messages: function (and custom tool) calls join the
    assistant message before them, their outputs become tool messages, a compaction item
    becomes the summary it carries. ``plan`` names namespaced tools as the provider
    knows them."""
    plan = plan or ToolPlan()
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise errors.InvalidRequestError(f"input item {i} must be an object", param="input")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(i, item))
        elif kind in ("function_call", "custom_tool_call"):
            name = plan.flat_name(_required(item, "name", i), item.get("namespace"))
            if kind == "function_call":
                arguments = item.get("arguments") or ""
            else:
                arguments = custom_arguments(str(item.get("input") or ""))
            call = {
                "id": _required(item, "call_id", i),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "compaction":
            messages.append(compaction.summary_message(i, item))
        elif kind in ("function_call_output", "custom_tool_call_output"):
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
                f"(supported: {_SUPPORTED_ITEMS})",
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
        elif kind == "input_file":
            text = file_text(part, f"input.{i}.content.{j}")
            parts.append({"type": "text", "text": text})
        else:
            raise errors.InvalidRequestError(
                f"input item {i}, part {j}: content parts of type {kind!r} are not supported "
                "(supported: input_text, input_image, input_file, output_text)",
                param=f"input.{i}.content.{j}.type",
                code="unsupported_input_item",
            )
    if role == "assistant" or all(p["type"] == "text" for p in parts):
        # Text only (assistant turns always): one string, as every upstream takes it.
        # Parts are joined as they are, except a file's text, which stands on its lines.
        texts = [p.get("text", "") for p in parts]
        if any(p.get("type") == "input_file" for p in content if isinstance(p, dict)):
            return {"role": role, "content": "\n\n".join(texts)}
        return {"role": role, "content": "".join(texts)}
    return {"role": role, "content": parts}


def _chat_response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
    return {"type": "json_schema", "json_schema": schema}
