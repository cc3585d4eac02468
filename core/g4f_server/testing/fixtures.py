"""The kit's pytest half: options, markers and fixtures. Loaded by ``-p g4f_server.testing``
(the package names this module in ``pytest_plugins``), never imported by the helpers, so
an emulator script can use ``png_bytes()`` without pytest installed."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import structlog

from g4f_server.provider import ProviderContext


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--g4f-live",
        action="store_true",
        default=False,
        help="also run tests marked 'live' that talk to real upstreams",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: talks to a real upstream over the internet")
    # Every kit fixture is a coroutine, and so is every test of an emulated upstream: an
    # author should not have to learn pytest-asyncio's modes first (issue 27). A project
    # that chose a mode keeps it; tryfirst: before pytest-asyncio reads the settings.
    if not config.getoption("asyncio_mode", None) and not _ini_written(config, "asyncio_mode"):
        config.option.asyncio_mode = "auto"
    _default_ini(config, "asyncio_default_fixture_loop_scope", "function")


def _ini_written(config: pytest.Config, name: str) -> bool:
    """Whether the project's ini file sets ``name`` (its default, "strict" for the mode,
    is not a choice). ``inicfg`` is deprecated in pytest 9 with no public successor; when
    it is gone, a value other than the default is the best sign left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return name in config.inicfg
        except AttributeError:
            return config.getini(name) not in ("", "strict")


def _default_ini(config: pytest.Config, name: str, value: str) -> None:
    """An ini value the project left unset, as if it had set it. pytest has no public
    setter; its cache of read values is the one place pytest-asyncio reads it from, and
    the worst a change there can do is bring back a deprecation warning."""
    try:
        if not config.getini(name):
            config._inicache[name] = value
    except (ValueError, AttributeError):  # pytest-asyncio not installed, or pytest changed
        pass


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
