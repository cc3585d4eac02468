"""Schemathesis against our own /openapi.json (issue 17 item 7): generated requests for every
documented operation, bounded in examples and time; any 5xx other than a provider's fails.

Runs against a real server on 127.0.0.1 (a thread with its own event loop), with the test
providers, so new routes are fuzzed as soon as they are documented.

The chat protocols' bodies are open objects in the schema (content blocks, input items, tool
definitions are ``dict``), so generated ones mostly stop at the first check. For
``/v1/messages``, ``/v1/responses`` and ``/v1/completions`` the run also sends valid, rich
bodies with one value anywhere in them replaced by any JSON value (issue 28: a string
``thinking.budget_tokens`` or a list as an image ``source`` answered 500): the body goes
through schemathesis' case, so it is sent and checked the same way.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from tests.fake_providers import Scripted
from tests.media_providers import Painter, Speaker
from tests.server_process import free_port

# Statuses a provider may answer for a well-formed request (failed upstream, no provider
# for the model): the gateway's own mistakes are the other 5xx.
PROVIDER_STATUSES = {502, 503, 504}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: Any) -> Iterator[str]:
    port = free_port()
    loop = asyncio.new_event_loop()
    config = AppConfig(data_dir=tmp_path_factory.mktemp("fuzz"), access_log=False)
    app = create_app(config, plugins=[Scripted(), Painter(), Speaker()], load_entrypoints=False)
    runner = web.AppRunner(app, handler_cancellation=True)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


PNG = (  # a 1x1 image
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TOOL = {"name": "lookup", "description": "find", "input_schema": {"type": "object"}}
SEEDS: dict[str, list[dict[str, Any]]] = {
    "/v1/messages": [
        {
            "model": "echo-1",
            "max_tokens": 64,
            "system": [{"type": "text", "text": "be brief"}],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "metadata": {"user_id": "u1"},
            "stop_sequences": ["END"],
            "tools": [TOOL],
            "tool_choice": {"type": "auto"},
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://x.invalid/a.png"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "s"},
                        {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "a"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "found"}],
                            "is_error": False,
                        }
                    ],
                },
            ],
        }
    ],
    "/v1/responses": [
        {
            "model": "echo-1",
            "instructions": "be brief",
            "max_output_tokens": 64,
            "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}}},
            "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "lookup"},
            "metadata": {"k": "v"},
            "store": False,
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is this?"},
                        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                    ],
                },
                {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "found"},
            ],
        }
    ],
    "/v1/completions": [
        {
            "model": "echo-1",
            "prompt": ["Once upon a time"],
            "suffix": "The end.",
            "max_tokens": 16,
            "stop": ["\n\n"],
            "echo": True,
            "stream": False,
            "stream_options": {"include_usage": True},
            "seed": 1,
            "user": "u1",
        }
    ],
}
# What each value of a seed body is replaced by, in turn: every JSON type, and the shapes
# that trip code written for one type (a number as text, a list for an object, an object
# for a list, an empty container, a huge or negative number).
HOSTILE: tuple[Any, ...] = (
    None,
    True,
    -1,
    10**30,
    1.5,
    "",
    "lots",
    [],
    [1, "a", None],
    {},
    {"type": []},
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value sits at (the document itself excluded)."""
    found = [path] if path else []
    if isinstance(value, dict):
        children: Any = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        children = ()
    for key, child in children:
        found += _paths(child, (*path, key))
    return found


def _replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copy


def mutated_bodies(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each seed with one value replaced by each hostile one, everywhere in it."""
    return [
        _replaced(seed, path, value) for seed in seeds for path in _paths(seed) for value in HOSTILE
    ]


def _no_5xx(base_url: str, failures: list[str]) -> Any:
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, timeout=10)
        if response.status_code >= 500 and response.status_code not in PROVIDER_STATUSES:
            body = json.dumps(case.body)[:300] if case.body is not None else ""
            failures.append(
                f"{case.method} {case.path}: {response.status_code} {response.text[:200]} {body}"
            )

    return check


def test_no_5xx_for_any_generated_request(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    bounded = settings(
        max_examples=15,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    check = _no_5xx(base_url, failures)
    for result in schema.get_all_operations():
        operation = result.ok()
        bounded(given(case=operation.as_strategy())(check))()
    assert not failures, failures


def test_no_5xx_for_mutated_chat_bodies(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    check = _no_5xx(base_url, failures)
    sent = 0
    for path, seeds in SEEDS.items():
        operation = schema[path]["POST"]
        for body in mutated_bodies(seeds):
            check(operation.Case(body=body, media_type="application/json"))
            sent += 1
    assert sent > 1000  # every value of every seed, each way
    assert not failures, failures
