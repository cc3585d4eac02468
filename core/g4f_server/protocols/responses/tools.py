"""Responses tools as the provider sees them, and the provider's calls as Responses items.

The Responses API has more kinds of tool than chat has. What every chat provider can run:

- ``function``: a function tool, as in chat;
- ``namespace``: a group of function (and custom) tools; flattened into its tools, each
  keeping its own name (qualified as ``<namespace>__<name>`` only where two names collide),
  and a call comes back as a ``function_call`` with its ``namespace`` set;
- ``custom`` (freeform): a function with one string argument ``input``; a call comes back
  as a ``custom_tool_call`` whose ``input`` is that string.

Hosted tools (``web_search``, ``file_search``, ``code_interpreter``, ``image_generation``,
``computer_use_preview``, ``mcp``, ...) run on OpenAI's side; the gateway cannot run them,
so they are dropped from what the provider sees and named in ``X-G4F-Dropped-Tools`` (and
a log line). Coding agents send some of them on every request: refusing them would refuse
the agent. Forcing one with ``tool_choice`` is a 400: its answer could not come.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from g4f_server import errors

DROPPED_HEADER = "X-G4F-Dropped-Tools"
# The one argument of a custom tool's function.
CUSTOM_ARGUMENT = "input"
_SEPARATOR = "__"


@dataclass(frozen=True)
class ToolName:
    """What a flat function name the provider calls stands for."""

    kind: str  # "function" or "custom"
    name: str
    namespace: str | None = None


@dataclass
class ToolPlan:
    """The request's tools for the provider (chat shape), what was dropped, and how a
    flat name maps back to the Responses tool."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    choice: str | dict[str, Any] | None = None
    dropped: list[str] = field(default_factory=list)
    names: dict[str, ToolName] = field(default_factory=dict)  # flat name -> tool
    _flat: dict[tuple[str | None, str], str] = field(default_factory=dict)

    def flat_name(self, name: str, namespace: str | None = None) -> str:
        """The provider's name of a tool (as history items name it)."""
        return self._flat.get((namespace, name), name)

    def call_item(self, item_id: str, call_id: str, flat: str, arguments: str) -> dict[str, Any]:
        """A provider's call as its Responses output item (status ``completed``)."""
        tool = self.names.get(flat)
        if tool is not None and tool.kind == "custom":
            item = {
                "id": item_id,
                "type": "custom_tool_call",
                "status": "completed",
                "call_id": call_id,
                "name": tool.name,
                "input": custom_input(arguments),
            }
        else:
            item = {
                "id": item_id,
                "type": "function_call",
                "status": "completed",
                "call_id": call_id,
                "name": tool.name if tool else flat,
                "arguments": arguments,
            }
        if tool is not None and tool.namespace:
            item["namespace"] = tool.namespace
        return item

    def is_custom(self, flat: str) -> bool:
        tool = self.names.get(flat)
        return tool is not None and tool.kind == "custom"


def custom_input(arguments: str) -> str:
    """The string a custom tool receives, from the JSON arguments of its function. A
    provider that answered with something else than the one-argument object gets its
    text passed through as the input (a freeform tool takes any text)."""
    try:
        parsed = json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get(CUSTOM_ARGUMENT), str):
        return parsed[CUSTOM_ARGUMENT]
    return arguments


def custom_arguments(text: str) -> str:
    """A custom tool call's input as the JSON arguments of its function (history)."""
    return json.dumps({CUSTOM_ARGUMENT: text}, ensure_ascii=False)


# The plan of a request without tools, shared: only plan_tools fills a plan, and only
# the one it has just made.
NO_TOOLS = ToolPlan()


def plan_tools(tools: list[dict[str, Any]] | None, choice: str | dict[str, Any] | None) -> ToolPlan:
    """The chat tools and tool choice for a Responses request's ``tools``/``tool_choice``."""
    if not tools and choice is None:  # most requests: nothing to plan, no plan to make
        return NO_TOOLS
    plan = ToolPlan()
    found: list[tuple[str | None, dict[str, Any], str]] = []  # (namespace, tool, param)
    for i, tool in enumerate(tools or []):
        if not isinstance(tool, dict):
            raise errors.InvalidRequestError(f"tool {i} must be an object", param=f"tools.{i}")
        kind = tool.get("type")
        if kind in ("function", "custom"):
            found.append((None, tool, f"tools.{i}"))
        elif kind == "namespace":
            space = _string(tool, "name", f"tools.{i}")
            members = tool.get("tools")
            if not isinstance(members, list):
                raise errors.InvalidRequestError(
                    f"namespace tool {i} needs a list 'tools'", param=f"tools.{i}.tools"
                )
            for j, member in enumerate(members):
                param = f"tools.{i}.tools.{j}"
                if not isinstance(member, dict) or member.get("type") not in ("function", "custom"):
                    raise errors.InvalidRequestError(
                        f"namespace tool {i}: member {j} must be a function or custom tool",
                        param=param,
                        code="unsupported_tool",
                    )
                found.append((space, member, param))
        elif isinstance(kind, str) and kind:
            plan.dropped.append(kind)
        else:
            raise errors.InvalidRequestError(f"tool {i} needs a 'type'", param=f"tools.{i}.type")
    counts: dict[str, int] = {}
    for _space, tool, param in found:
        name = _string(tool, "name", param)
        counts[name] = counts.get(name, 0) + 1
    for space, tool, _param in found:
        name = tool["name"]
        flat = f"{space}{_SEPARATOR}{name}" if space and counts[name] > 1 else name
        if flat in plan.names:
            raise errors.InvalidRequestError(
                f"Two tools are named {flat!r}", param="tools", code="duplicate_tool"
            )
        plan.names[flat] = ToolName(tool["type"], name, space)
        plan._flat[(space, name)] = flat
        plan.tools.append(_chat_tool(flat, tool))
    plan.choice = _choice(plan, choice)
    if not plan.tools and plan.choice in ("auto", "none"):
        plan.choice = None  # nothing left to choose from
    return plan


def echoed_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The tools as the response echoes them: function tools with every field the API
    reference gives (``strict`` as the provider was asked: false unless sent), the others
    as sent."""
    out = []
    for tool in tools or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            tool = {
                "type": "function",
                "name": tool.get("name"),
                "description": tool.get("description"),
                "parameters": tool.get("parameters"),
                **tool,
                "strict": bool(tool.get("strict")),
            }
        out.append(tool)
    return out


def _string(tool: dict[str, Any], key: str, param: str) -> str:
    value = tool.get(key)
    if not isinstance(value, str) or not value:
        raise errors.InvalidRequestError(f"{param} needs a string '{key}'", param=f"{param}.{key}")
    return value


def _chat_tool(flat: str, tool: dict[str, Any]) -> dict[str, Any]:
    if tool["type"] == "function":
        function = {k: tool[k] for k in ("description", "parameters", "strict") if k in tool}
        return {"type": "function", "function": {"name": flat, **function}}
    # A custom tool: its grammar, if any, is told to the model in the description (a chat
    # provider cannot constrain the output to it).
    description = tool.get("description") or ""
    fmt = tool.get("format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and fmt.get("definition"):
        description += (
            f"\n\nThe input must follow this {fmt.get('syntax', 'grammar')} grammar:\n"
            f"{fmt['definition']}"
        )
    parameters = {
        "type": "object",
        "properties": {
            CUSTOM_ARGUMENT: {"type": "string", "description": "The tool's input, as raw text"}
        },
        "required": [CUSTOM_ARGUMENT],
    }
    function = {"name": flat, "parameters": parameters}
    if description.strip():
        function["description"] = description.strip()
    return {"type": "function", "function": function}


def _choice(plan: ToolPlan, choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or isinstance(choice, str):
        return choice  # "auto", "none", "required"
    kind = choice.get("type")
    if kind in ("function", "custom") and isinstance(choice.get("name"), str):
        flat = plan.flat_name(choice["name"], choice.get("namespace"))
        return {"type": "function", "function": {"name": flat}}
    if kind == "allowed_tools":
        allowed = {
            plan.flat_name(t["name"], t.get("namespace"))
            for t in choice.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        }
        plan.tools = [t for t in plan.tools if t["function"]["name"] in allowed]
        mode = choice.get("mode", "auto")
        return mode if mode in ("auto", "required") else "auto"
    if isinstance(kind, str) and kind:
        raise errors.InvalidRequestError(
            f"tool_choice forces the hosted tool {kind!r}, which this gateway cannot run "
            "(hosted tools are dropped; use 'auto', 'none', 'required', a function or a "
            "custom tool)",
            param="tool_choice",
            code="unsupported_tool",
        )
    raise errors.InvalidRequestError("tool_choice needs a 'type'", param="tool_choice")
