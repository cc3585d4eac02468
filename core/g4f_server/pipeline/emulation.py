"""Emulation of what a model lacks, off by default (``--emulate tools,json`` or a request's
``"emulate": [...]``), used only when no target can serve the request natively.

- ``tools``: the tool definitions go into a system message asking for one JSON object
  ``{"tool_call": {"name": ..., "arguments": {...}}}`` when a tool is needed; an answer of
  that shape whose arguments validate against the tool's JSON schema becomes a tool call,
  anything else stays text. Earlier tool calls and results are rewritten as text.
- ``json``: ``json_object`` / ``json_schema`` become an instruction; the JSON is extracted
  from the answer and validated against the schema, with one retry that shows the model
  its mistake; a second failure is a 502.

The whole answer is needed before it can be judged, so an emulated answer is read in full
and then replayed (as chunks when streamed). The ``X-G4F-Emulated`` header says what was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from g4f_server import errors
from g4f_server import events as ev
from g4f_server.pipeline.dispatch import ChatRun, replay
from g4f_server.pipeline.transcript import Transcript

if TYPE_CHECKING:
    from g4f_server.requests import ChatRequest

HEADER = "X-G4F-Emulated"
KINDS = ("tools", "json")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass(slots=True)
class Plan:
    kinds: tuple[str, ...]
    request: ChatRequest  # what the provider is sent
    tools: dict[str, dict[str, Any]]  # name -> parameters schema
    schema: dict[str, Any] | None  # json_schema's schema; {} for json_object
    wants_json: bool


def wanted(default: list[str], chat: ChatRequest) -> tuple[str, ...]:
    asked = (chat.model_extra or {}).get("emulate")
    kinds = asked if isinstance(asked, list) else default
    return tuple(k for k in KINDS if k in kinds)


def plan(kinds: tuple[str, ...], chat: ChatRequest) -> Plan | None:
    """The rewritten request, or None when there is nothing to emulate."""
    use = []
    if "tools" in kinds and chat.tools:
        use.append("tools")
    wants_json = bool(chat.response_format and chat.response_format.type != "text")
    if "json" in kinds and wants_json:
        use.append("json")
    if not use:
        return None
    messages = [_as_text(m) for m in chat.message_dicts()]
    instructions = []
    tools: dict[str, dict[str, Any]] = {}
    schema: dict[str, Any] | None = None
    if "tools" in use:
        for tool in chat.tools or ():
            if tool.function is not None:
                tools[tool.function.name] = tool.function.parameters or {}
        described = [
            {"name": t.function.name, "description": t.function.description, "parameters": p}
            for t in chat.tools or ()
            if t.function is not None
            for p in [t.function.parameters or {}]
        ]
        instructions.append(
            "You can call these tools: "
            + json.dumps(described)
            + '\nTo call one, reply with only a JSON object {"tool_call": {"name": "<tool>", '
            '"arguments": {...}}} whose arguments match its parameters. Otherwise answer '
            "normally."
        )
    if "json" in use and chat.response_format is not None:
        spec = chat.response_format.json_schema or {}
        schema = spec.get("schema", {}) if chat.response_format.type == "json_schema" else {}
        text = "Reply with only one JSON object, no prose and no code fence."
        if schema:
            text += " It must match this JSON schema: " + json.dumps(schema)
        instructions.append(text)
    messages.insert(0, {"role": "system", "content": "\n\n".join(instructions)})
    update: dict[str, Any] = {"messages": messages}
    if "tools" in use:
        update.update(tools=None, tool_choice=None, parallel_tool_calls=None)
    if "json" in use:
        update["response_format"] = None
    rewritten = type(chat).model_validate({**chat.model_dump(exclude_none=True), **update})
    return Plan(tuple(use), rewritten, tools, schema, "json" in use)


def _as_text(message: dict[str, Any]) -> dict[str, Any]:
    """Tool calls and tool results as plain text, for a model that knows no tools."""
    if message.get("role") == "tool":
        return {"role": "user", "content": f"Tool result ({message.get('tool_call_id')}): "
                + (message.get("content") if isinstance(message.get("content"), str)
                   else json.dumps(message.get("content")))}  # fmt: skip
    if message.get("tool_calls"):
        calls = [
            {"tool_call": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
            for c in message["tool_calls"]
        ]
        return {"role": "assistant", "content": json.dumps(calls[0] if len(calls) == 1 else calls)}
    return message


def extract_json(text: str) -> Any:
    """The JSON object in an answer: the whole text, a fenced block, or the outermost
    braces; ValueError when there is none."""
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("no JSON object in the answer")


def schema_errors(value: Any, schema: dict[str, Any]) -> str | None:
    import jsonschema  # only with emulation: the import costs ~30 ms

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return exc.message
    except jsonschema.SchemaError as exc:
        return f"the schema is invalid: {exc.message}"
    return None


async def _read(run: ChatRun, within: float) -> Transcript:
    transcript = Transcript()
    await run.read(transcript, within)
    return transcript


def _tool_call(plan: Plan, text: str) -> tuple[str, dict[str, Any]] | None:
    try:
        value = extract_json(text)
    except ValueError:
        return None
    call = value.get("tool_call") if isinstance(value, dict) else None
    if not isinstance(call, dict) or call.get("name") not in plan.tools:
        return None
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict) or schema_errors(arguments, plan.tools[call["name"]]):
        return None
    return call["name"], arguments


async def answer(
    plan: Plan,
    run: ChatRun,
    retry: Callable[[ChatRequest], Awaitable[ChatRun]],
    within: float,
) -> ChatRun:
    """The emulated answer, judged on the whole of the provider's answer (JSON gets one
    retry that shows the model its mistake), as a run that replays it; the headers the
    provider passed on come from its last call."""
    first = run
    transcript = await _read(run, within)
    tail = [transcript.usage] if transcript.usage else []  # the first answer's, even after a retry
    events, problem = _judge(plan, transcript, tail, tools=True)
    if events is None:  # JSON that does not parse or validate: one retry, showing why
        run = await retry(_corrected(plan.request, "".join(transcript.text), problem))
        events, problem = _judge(plan, await _read(run, within), tail, tools=False)
        if events is None:
            raise errors.ProviderError(
                f"The model did not produce valid JSON after a retry ({problem})",
                code="emulation_failed",
            )
    return replay(first.route, first.attempts, events, first.idle_timeout, run.ctx)


def _judge(
    plan: Plan, transcript: Transcript, tail: list[ev.ChatEvent], *, tools: bool
) -> tuple[list[ev.ChatEvent] | None, str | None]:
    """(the answer's events, None), or (None, what is wrong with the JSON asked for)."""
    text = "".join(transcript.text)
    if tools and "tools" in plan.kinds and (call := _tool_call(plan, text)) is not None:
        name, arguments = call
        call_event = ev.ToolCallDelta(0, "call_emulated_0", name, json.dumps(arguments))
        return [call_event, *tail, ev.Finish("tool_calls")], None
    if plan.wants_json:
        problem = _json_problem(text, plan.schema or {})
        if problem is not None:
            return None, problem
        return [ev.TextDelta(json.dumps(extract_json(text))), *tail, ev.Finish("stop")], None
    return [ev.TextDelta(text), *tail, ev.Finish(transcript.finish or "stop")], None


def _corrected(request: ChatRequest, text: str, problem: str | None) -> ChatRequest:
    """The request again, with the model's invalid answer and what is wrong with it."""
    messages = [
        *request.message_dicts(),
        {"role": "assistant", "content": text},
        {"role": "user", "content": f"That was not valid: {problem}. Reply again "
         "with only the corrected JSON object."},
    ]  # fmt: skip
    again = request.model_copy(update={"messages": request.messages})
    return type(again).model_validate({**again.model_dump(), "messages": messages})


def _json_problem(text: str, schema: dict[str, Any]) -> str | None:
    try:
        value = extract_json(text)
    except ValueError as exc:
        return str(exc)
    if not isinstance(value, dict):
        return "the answer is not a JSON object"
    return schema_errors(value, schema) if schema else None
