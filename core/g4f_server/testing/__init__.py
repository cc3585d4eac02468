"""pytest fixtures shipped with the kernel, for our tests and every plugin author's.

A pytest plugin a project turns on, with ``-p g4f_server.testing`` (``addopts``) or
``pytest_plugins = ["g4f_server.testing"]`` in its root ``conftest.py``. It is not
registered through the ``pytest11`` entry point: installing g4f-server adds no option,
marker, hook or fixture to another project's test run (a project's own tests marked
``live`` stay its own):

- ``provider_context``: a factory of ``ProviderContext`` objects with a real shared
  ``aiohttp.ClientSession``, for calling a plugin's hooks directly.
- ``start_gateway``: starts the whole gateway on 127.0.0.1 with the plugins you give it
  (installed entry points are not loaded) and returns its base URL.
- ``openai_client`` / ``anthropic_client``: the official async SDKs (no retries) pointed
  at the gateway of a ``gateway_url`` fixture your tests define (for example one that
  returns ``await start_gateway(plugins=[...])``); skipped when the SDK is not installed.
- ``--g4f-live``: tests marked ``live`` (real upstreams over the internet) are skipped
  unless pytest runs with ``--g4f-live``. Namespaced: a project of its own ``--live``
  option can still install g4f-server (``./dev test --live`` passes ours).
- ``png_bytes()`` and ``wav_bytes()``: valid media made with the stdlib, for emulators.
- ``wait_until(condition)``: poll instead of sleeping a fixed time, so a test that waits
  for a socket to close or a task to start also passes on a slow, loaded CI machine.
- ``chat_events(plugin.chat(...))``: the events of a ``chat`` hook one by one, the lists
  it yields (events that arrived together) flattened.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import struct
import wave
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import structlog

from g4f_server.events import ChatEvent, ChatItem
from g4f_server.provider import ProviderContext


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--g4f-live",
        action="store_true",
        default=False,
        help="also run tests marked 'live' that talk to real upstreams",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: talks to a real upstream over the internet")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--g4f-live"):
        return
    skip = pytest.mark.skip(reason="live test: run with --g4f-live (needs internet)")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
async def provider_context() -> AsyncIterator[Callable[..., ProviderContext]]:
    """``provider_context(**fields)`` -> a ProviderContext sharing one ClientSession."""
    async with aiohttp.ClientSession() as http:
        states: dict[str, Any] = {}

        def make(**fields: Any) -> ProviderContext:
            fields.setdefault("state", states)
            fields.setdefault("log", structlog.get_logger("test"))
            return ProviderContext(http=http, **fields)

        yield make


@pytest.fixture
async def start_gateway(
    aiohttp_server: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[str]]:
    """``await start_gateway(plugins=[...], **config)`` -> "http://127.0.0.1:PORT".

    ``config`` fields are AppConfig fields (api_key=..., provider=..., data_dir=...).
    """
    from g4f_server.app import create_app
    from g4f_server.config import AppConfig

    async def start(plugins: list[object] | None = None, **config: Any) -> str:
        app = create_app(AppConfig(**config), plugins=plugins or [], load_entrypoints=False)
        # aiohttp's TestServer cancels handlers on disconnect, as run_api does.
        server = await aiohttp_server(app)
        return str(server.make_url("")).rstrip("/")

    return start


@pytest.fixture
async def openai_client(gateway_url: str) -> AsyncIterator[Any]:
    """``openai.AsyncOpenAI`` on ``gateway_url + "/v1"``, with no retries to hide failures."""
    openai = pytest.importorskip("openai")
    async with openai.AsyncOpenAI(base_url=gateway_url + "/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def anthropic_client(gateway_url: str) -> AsyncIterator[Any]:
    """``anthropic.AsyncAnthropic`` on ``gateway_url`` (it adds ``/v1`` itself)."""
    anthropic = pytest.importorskip("anthropic")
    async with anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0) as sdk:
        yield sdk


# --- media for emulators and tests (stdlib only) ---------------------------------------


def png_bytes(width: int = 1, height: int = 1, *, noise: bool = False) -> bytes:
    """A valid RGB PNG; ``noise`` fills it with random pixels so it does not compress."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    def row() -> bytes:
        return b"\x00" + (os.urandom(width * 3) if noise else b"\xff\x00\x00" * width)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(row() for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def wav_bytes(seconds: float = 0.2, rate: int = 8000, *, tone_hz: float | None = None) -> bytes:
    """A mono 16-bit WAV: silence, or a sine tone of ``tone_hz``."""
    frames = int(seconds * rate)
    if tone_hz is None:
        samples = b"\x00\x00" * frames
    else:
        samples = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * tone_hz * i / rate)))
            for i in range(frames)
        )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition"
) -> None:
    """Return as soon as ``condition()`` is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s")
        await asyncio.sleep(0.01)


async def chat_events(items: AsyncIterable[ChatItem]) -> AsyncIterator[ChatEvent]:
    """The events a ``chat`` hook yields, one by one: its lists flattened, in order."""
    async for item in items:
        if isinstance(item, list):
            for event in item:
                yield event
        else:
            yield item
