"""The Open Responses specification's response object, as a JSON Schema written for our
tests from the specification (ResponseResource, its items and usage; the compaction
object), checked with ``jsonschema``. Only what the specification requires and types is
here; extra fields (``provider``, ``output_text``) are allowed, as the specification
allows them."""

from __future__ import annotations

from typing import Any

import jsonschema

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_USAGE = {
    "type": "object",
    "required": [
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "input_tokens_details",
        "output_tokens_details",
    ],
    "properties": {
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "input_tokens_details": {
            "type": "object",
            "required": ["cached_tokens"],
            "properties": {"cached_tokens": {"type": "integer"}},
        },
        "output_tokens_details": {
            "type": "object",
            "required": ["reasoning_tokens"],
            "properties": {"reasoning_tokens": {"type": "integer"}},
        },
    },
}
_STATUS = {"enum": ["in_progress", "completed", "incomplete"]}
_CONTENT_PART = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["output_text", "input_text", "input_image", "refusal"]}},
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "output_text"}}},
            "then": {
                "required": ["text", "annotations"],
                "properties": {
                    "text": {"type": "string"},
                    "annotations": {"type": "array"},
                    "logprobs": {"type": "array"},
                },
            },
        },
        {
            "if": {"properties": {"type": {"const": "input_text"}}},
            "then": {"required": ["text"], "properties": {"text": {"type": "string"}}},
        },
    ],
}
_ITEMS = {
    "message": {
        "required": ["type", "id", "status", "role", "content"],
        "properties": {
            "id": {"type": "string"},
            "status": _STATUS,
            "role": {"enum": ["user", "assistant", "system", "developer"]},
            "content": {"type": "array", "items": _CONTENT_PART},
        },
    },
    "function_call": {
        "required": ["type", "id", "call_id", "name", "arguments", "status"],
        "properties": {
            "id": {"type": "string"},
            "call_id": {"type": "string"},
            "name": {"type": "string", "minLength": 1},
            "arguments": {"type": "string"},
            "status": _STATUS,
            "namespace": {"type": "string"},
        },
    },
    "reasoning": {
        "required": ["type", "id", "summary"],
        "properties": {"id": {"type": "string"}, "summary": {"type": "array"}},
    },
    "compaction": {
        "required": ["type", "id", "encrypted_content"],
        "properties": {"id": {"type": "string"}, "encrypted_content": {"type": "string"}},
    },
    # Not in the specification's ItemField union; OpenAI's API reference shape.
    "custom_tool_call": {
        "required": ["type", "id", "call_id", "name", "input"],
        "properties": {
            "id": {"type": "string"},
            "call_id": {"type": "string"},
            "name": {"type": "string", "minLength": 1},
            "input": {"type": "string"},
        },
    },
}
_ITEM = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": sorted(_ITEMS)}},
    "allOf": [
        {
            "if": {"properties": {"type": {"const": kind}}},
            "then": {"type": "object", **schema},
        }
        for kind, schema in _ITEMS.items()
    ],
}
_FUNCTION_TOOL = {
    "type": "object",
    "required": ["type", "name", "description", "parameters", "strict"],
    "properties": {
        "name": {"type": "string"},
        "description": _NULLABLE_STRING,
        "parameters": {"type": ["object", "null"]},
        "strict": {"type": ["boolean", "null"]},
    },
}
RESPONSE = {
    "type": "object",
    "required": [
        "id",
        "object",
        "created_at",
        "completed_at",
        "status",
        "incomplete_details",
        "model",
        "previous_response_id",
        "instructions",
        "output",
        "error",
        "tools",
        "tool_choice",
        "truncation",
        "parallel_tool_calls",
        "text",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "top_logprobs",
        "temperature",
        "reasoning",
        "user",
        "usage",
        "max_output_tokens",
        "max_tool_calls",
        "store",
        "background",
        "service_tier",
        "metadata",
        "safety_identifier",
        "prompt_cache_key",
    ],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response"},
        "created_at": {"type": "integer"},
        "completed_at": _NULLABLE_INT,
        "status": {
            "enum": ["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]
        },
        "incomplete_details": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["reason"],
                    "properties": {"reason": {"type": "string"}},
                },
            ]
        },
        "model": {"type": "string"},
        "previous_response_id": _NULLABLE_STRING,
        "instructions": {"type": ["string", "array", "null"]},
        "output": {"type": "array", "items": _ITEM},
        "error": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
            ]
        },
        "tools": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "if": {"properties": {"type": {"const": "function"}}},
                "then": _FUNCTION_TOOL,
            },
        },
        "tool_choice": {"type": ["string", "object"]},
        "truncation": {"enum": ["auto", "disabled"]},
        "parallel_tool_calls": {"type": "boolean"},
        "text": {
            "type": "object",
            "required": ["format"],
            "properties": {"format": {"type": "object"}},
        },
        "top_p": {"type": "number"},
        "presence_penalty": {"type": "number"},
        "frequency_penalty": {"type": "number"},
        "top_logprobs": {"type": "integer"},
        "temperature": {"type": "number"},
        "reasoning": {"type": ["object", "null"]},
        "user": _NULLABLE_STRING,
        "usage": {"oneOf": [{"type": "null"}, _USAGE]},
        "max_output_tokens": _NULLABLE_INT,
        "max_tool_calls": _NULLABLE_INT,
        "store": {"type": "boolean"},
        "background": {"type": "boolean"},
        "service_tier": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "safety_identifier": _NULLABLE_STRING,
        "prompt_cache_key": _NULLABLE_STRING,
    },
}
COMPACTION = {
    "type": "object",
    "required": ["id", "object", "output", "created_at", "usage"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response.compaction"},
        "output": {"type": "array", "items": _ITEM},
        "created_at": {"type": "integer"},
        "usage": _USAGE,
    },
}


def check_response(body: Any) -> None:
    """Fail (AssertionError, every problem listed) unless ``body`` is a valid response."""
    _check(RESPONSE, body)


def check_compaction(body: Any) -> None:
    _check(COMPACTION, body)


def _check(schema: dict[str, Any], body: Any) -> None:
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(body)
    ]
    assert not problems, "\n".join(problems)
