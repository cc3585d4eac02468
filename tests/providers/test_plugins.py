"""Plugin loading and the registry: broken plugins are skipped and reported, never fatal."""

from __future__ import annotations

from typing import Any

import pytest

from g4f_server.app import create_app
from g4f_server.config import AppConfig, ConfigError
from g4f_server.providers.registry import StartupError
from tests.fake_providers import BrokenInfo, FailingLister, InfoOnly, Relays, Scripted, Typo


async def providers_of(
    aiohttp_client: Any, tmp_path: Any, plugins: list[object], **config: Any
) -> dict[str, Any]:
    app = create_app(
        AppConfig(data_dir=tmp_path, **config), plugins=plugins, load_entrypoints=False
    )
    client = await aiohttp_client(app)
    data = (await (await client.get("/v1/providers")).json())["data"]
    return {p["id"]: p for p in data}


async def test_broken_plugins_show_as_not_working(aiohttp_client: Any, tmp_path: Any) -> None:
    providers = await providers_of(aiohttp_client, tmp_path, [Scripted(), BrokenInfo(), Typo()])
    assert providers["Echo"]["working"] is True
    assert providers["BrokenInfo"]["working"] is False
    assert "cannot describe myself" in providers["BrokenInfo"]["error"]
    assert providers["Typo"]["working"] is False
    assert "list_model" in providers["Typo"]["error"]


async def test_capabilities_follow_implemented_hooks(aiohttp_client: Any, tmp_path: Any) -> None:
    providers = await providers_of(aiohttp_client, tmp_path, [Scripted(), InfoOnly()])
    assert providers["Echo"]["capabilities"] == ["chat"]
    assert providers["Echo"]["models"] == ["echo-1", "thinker", "plain"]
    assert providers["Empty"]["capabilities"] == []


async def test_allow_and_deny_lists(aiohttp_client: Any, tmp_path: Any) -> None:
    plugins = [Scripted(name="Alpha"), Scripted(name="Beta")]
    only = await providers_of(aiohttp_client, tmp_path, plugins, load_plugins=["alpha"])
    assert set(only) == {"Alpha"}
    denied = await providers_of(aiohttp_client, tmp_path, plugins, disabled_plugins=["Alpha"])
    assert set(denied) == {"Beta"}
    none = await providers_of(aiohttp_client, tmp_path, plugins, load_plugins=[])
    assert none == {}


async def test_ignored_providers_are_not_routed(aiohttp_client: Any, tmp_path: Any) -> None:
    providers = await providers_of(
        aiohttp_client,
        tmp_path,
        [Scripted(name="Alpha"), Scripted(name="Beta")],
        ignored_providers=["beta"],
    )
    assert set(providers) == {"Alpha"}


def test_duplicate_provider_names_fail_loudly(tmp_path: Any) -> None:
    with pytest.raises(StartupError, match="Duplicate provider name 'Echo'"):
        create_app(
            AppConfig(data_dir=tmp_path), plugins=[Scripted(), Scripted()], load_entrypoints=False
        )


async def test_failing_model_listing_marks_provider_not_working(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    providers = await providers_of(aiohttp_client, tmp_path, [FailingLister()])
    assert providers["Lister"]["working"] is False
    assert "upstream unreachable" in providers["Lister"]["error"]


def test_env_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    config = AppConfig.load(environ={"G4F_LOAD_PLUGINS": "a, b", "G4F_DISABLED_PLUGINS": "c"})
    assert config.load_plugins == ["a", "b"]
    assert config.disabled_plugins == ["c"]
    assert AppConfig.load(environ={"G4F_LOAD_PLUGINS": ""}).load_plugins == []
    assert AppConfig.load(environ={}).load_plugins is None


def test_model_lookup_follows_a_refreshed_list() -> None:
    """Lookups are indexed; a new model list (a refresh) must be seen at once."""
    from g4f_server.provider import ModelInfo, ProviderInfo
    from g4f_server.providers.registry import ProviderEntry

    entry = ProviderEntry(info=ProviderInfo(name="P"), plugin_name="p")
    entry.models = [ModelInfo("old-1", aliases=("Fast",)), ModelInfo("shared", aliases=("fast",))]
    assert entry.model("FAST").id == "old-1"  # case-insensitive; the first listed wins
    entry.models = [ModelInfo("new-1", aliases=("fast",))]
    assert entry.model("old-1") is None
    assert entry.model("Fast").id == "new-1"


async def test_a_plugin_registers_one_provider_per_upstream(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    relays = Relays()
    providers = await providers_of(aiohttp_client, tmp_path, [relays], upstreams="groq, gemini")
    assert set(providers) == {"Groq", "Gemini"}  # no "not working" entry for the adder
    assert providers["Groq"]["models"] == ["groq-model"] and providers["Groq"]["working"]
    settings = relays.received[0]
    assert settings["upstreams"] == {"groq": {}, "gemini": {}}
    keyed = AppConfig(api_key="gateway-secret", state_password="pw").plugin_settings()
    assert "api_key" not in keyed and "state_password" not in keyed  # the gateway's own


def test_a_refused_setting_stops_the_app_with_its_message(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="relays: upstream 'groq' needs GROQ_API_KEY"):
        create_app(
            AppConfig(data_dir=tmp_path, upstreams=["groq"]),
            plugins=[Relays(refuse="groq")],
            load_entrypoints=False,
        )


def test_upstream_names_add_to_the_config_files_tables(tmp_path: Any) -> None:
    path = tmp_path / "g4f.toml"
    path.write_text(
        '[upstreams.mine]\nbase_url = "http://127.0.0.1:9/v1"\n[upstreams.groq]\npriority = 5\n'
    )
    config = AppConfig.load(environ={"G4F_UPSTREAMS": "groq,ollama"}, config=str(path))
    assert config.upstreams == {
        "mine": {"base_url": "http://127.0.0.1:9/v1"},
        "groq": {"priority": 5},
        "ollama": {},
    }
    assert AppConfig.load(environ={}, config=str(path)).upstreams["groq"] == {"priority": 5}
    secret = AppConfig(upstreams={"mine": {"api_key": "sk-1", "base_url": "http://x"}})
    assert secret.redacted()["upstreams"]["mine"] == {"api_key": "***", "base_url": "http://x"}
