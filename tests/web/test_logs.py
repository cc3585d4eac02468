"""Log lines as the server writes them: the access line's direct path against structlog's."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog

from g4f_server import logs
from g4f_server.providers import context
from g4f_server.testing import wait_until
from tests.fake_providers import Endless, Scripted

ACCESS = ("req-1", "POST", "/v1/chat/completions", 200, "Echo", "echo-1", 1, 1.25)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    state = logs._pipeline, logs._renderer, logs._sink
    yield
    structlog.configure(**saved)
    logs._pipeline, logs._renderer, logs._sink = state
    # Provider loggers are bound (and cached) on first use: none may keep this set-up.
    context._provider_logger.cache_clear()


def _configure(**kwargs: Any) -> None:
    logs.configure_logging(**kwargs)
    # Module-level loggers must not keep this test's set-up once it is restored.
    structlog.configure(cache_logger_on_first_use=False)


def _without_timestamp(line: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "T", line)


@pytest.mark.parametrize("json_logs", [False, True])
def test_access_line_is_the_line_structlog_would_write(
    restore_logging: None, json_logs: bool
) -> None:
    direct, piped = io.StringIO(), io.StringIO()
    _configure(json_logs=json_logs, stream=direct)
    logs.access_line(*ACCESS)
    _configure(json_logs=json_logs, stream=piped)
    request_id, method, path, status, provider, model, attempts, ms = ACCESS
    logs.bind_request_id(request_id)  # the way the middleware binds it
    structlog.get_logger("other").info(
        "request",
        method=method,
        path=path,
        status=status,
        provider=provider,
        model=model,
        attempts=attempts,
        ms=ms,
    )
    line = direct.getvalue()
    assert line.count("\n") == 1 and "request_id" in line and "Echo" in line
    assert _without_timestamp(line) == _without_timestamp(piped.getvalue())
    if json_logs:
        assert orjson.loads(line)["request_id"] == "req-1"


def test_access_line_ms_reads_as_the_float_to_the_hundredth(restore_logging: None) -> None:
    # The direct path writes the hundredths from a table: the text a float's repr gives.
    for hundredths in [*range(0, 20_000), 123_456_789, 10**13 + 7, 10**15 + 1]:
        assert logs._ms_text(hundredths) == repr(hundredths / 100), hundredths
    out = io.StringIO()
    _configure(stream=out)
    logs.access_line(*ACCESS[:-1], 1234.5678)
    logs.access_line(*ACCESS[:-1], 0.004)
    assert [line.split(" ms=")[1].split()[0] for line in out.getvalue().splitlines()] == [
        "1234.57",
        "0.0",
    ]
    with structlog.testing.capture_logs() as captured:
        logs.access_line(*ACCESS[:-1], 1234.5678)
    assert captured[0]["ms"] == 1234.57


def test_access_line_follows_a_swapped_pipeline(restore_logging: None) -> None:
    out = io.StringIO()
    _configure(stream=out)
    with structlog.testing.capture_logs() as captured:
        logs.access_line(*ACCESS)
    assert out.getvalue() == ""
    assert captured[0]["request_id"] == "req-1" and captured[0]["status"] == 200


async def test_every_line_of_a_request_carries_its_id(
    restore_logging: None, make_client: Any
) -> None:
    from g4f_server import errors

    out = io.StringIO()
    _configure(stream=out)
    client = await make_client(Scripted(fail=errors.ProviderError("upstream down")))
    resp = await client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}]},
        headers={"X-Request-Id": "req-77"},
    )
    assert resp.status == 502
    resp = await client.post("/v1/chat/completions", json={"messages": "not a list"})
    assert resp.status == 400
    lines = out.getvalue().splitlines()
    failed = [line for line in lines if "event='provider_failed'" in line]
    access = [line for line in lines if "event='request'" in line]
    assert len(failed) == 1 and "request_id='req-77'" in failed[0]
    assert len(access) == 2
    assert "request_id='req-77'" in access[0] and "status=502" in access[0]
    assert "request_id='req-77'" not in access[1] and "status=400" in access[1]


def _access_lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if "event='request'" in line]


async def test_a_failed_request_names_every_provider_tried(
    restore_logging: None, make_client: Any
) -> None:
    from g4f_server import errors

    out = io.StringIO()
    _configure(stream=out)
    first = Scripted(name="A", priority=1, fail=errors.ProviderError("down"))
    second = Scripted(name="B", priority=2, fail=errors.ProviderError("down too"))
    client = await make_client(first, second)
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 502
    [line] = _access_lines(out)
    assert "status=502 provider='A,B' model='echo-1' attempts=2" in line


@pytest.mark.parametrize("when", ["mid-stream", "during failover"])
async def test_a_client_hang_up_has_an_access_line_with_the_provider(
    restore_logging: None, make_client: Any, when: str
) -> None:
    out = io.StringIO()
    _configure(stream=out)
    provider = Endless() if when == "mid-stream" else Scripted(name="Slow", delay=30)
    client = await make_client(provider)
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "x"}], "stream": True}
    request = asyncio.ensure_future(client.post("/v1/chat/completions", json=body))
    if when == "mid-stream":
        resp = await request
        await resp.content.readany()  # the answer is flowing
        resp.close()  # the client hangs up
    else:
        await wait_until(lambda: bool(provider.seen), what="the provider was called")
        request.cancel()  # the client gives up before the first byte
    await wait_until(lambda: bool(_access_lines(out)), what="an access line")
    [line] = _access_lines(out)
    name = "Endless" if when == "mid-stream" else "Slow"
    assert f"status=499 provider='{name}' model='echo-1' attempts=1" in line
