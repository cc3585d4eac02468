"""From the server's ``upstreams`` setting to one checked configuration per upstream.

``settings["upstreams"]`` maps a name to a table: ``{}`` for a preset turned on by name
(``--upstreams groq``), or a config-file table ``[upstreams.NAME]``. Everything an
upstream needs is resolved here, once, at start-up, so that a missing key or a typo
stops the server with a message naming the variable instead of failing every request.
Nothing is turned on because a key happens to be in the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from g4f_server_openai_compat.presets import PRESETS, Preset

# The keys a table may hold; anything else is a typo the operator wants to hear about.
TABLE_KEYS = frozenset(
    {
        "base_url",
        "api_key",
        "api_key_env",
        "preset",
        "models",
        "priority",
        "headers",
        "name",
        "label",
        "account_id",
    }
)
# A preset with no key_env, used for an upstream that names none (any OpenAI-style API).
CUSTOM = Preset(
    key="custom",
    provider="",
    label="",
    url="",
    base_url="",
    key_required=False,
    embeddings=True,
    priority=60,
)


@dataclass(slots=True, frozen=True)
class Upstream:
    """One upstream the operator turned on, fully resolved."""

    name: str  # the table name, e.g. "groq" or "my-vllm"
    provider: str  # the provider name clients use, e.g. "Groq"
    label: str
    preset: Preset
    base_url: str  # without a trailing slash
    api_key: str | None
    key_source: str  # what to tell an operator whose key was refused
    priority: int
    headers: Mapping[str, str] = field(default_factory=dict)
    # None: every listed model; else upstream id -> the public names it answers to.
    allowed: Mapping[str, tuple[str, ...]] | None = None

    @property
    def models_url(self) -> str | None:
        path = self.preset.models_path
        if path is None:
            return None
        base = self.base_url
        while path.startswith("../"):  # GitHub's catalog sits beside /inference
            base, path = base.rsplit("/", 1)[0], path[3:]
        return f"{base}/{path.lstrip('/')}"


def resolve_all(
    upstreams: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> list[Upstream]:
    """Every upstream of the setting, or ``ValueError`` naming what is missing."""
    env = os.environ if environ is None else environ
    if not isinstance(upstreams, Mapping):
        raise ValueError("the 'upstreams' setting must be a table of name -> table")
    return [resolve(str(name), table or {}, env) for name, table in upstreams.items()]


def resolve(name: str, table: Mapping[str, Any], env: Mapping[str, str]) -> Upstream:
    if not isinstance(table, Mapping):
        raise ValueError(f"upstream {name!r}: expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - TABLE_KEYS)
    if unknown:
        raise ValueError(
            f"upstream {name!r}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(TABLE_KEYS))})"
        )
    preset = _preset_of(name, table)
    named_after_preset = preset.key == name.lower()
    base_url = _base_url(name, table, preset, env)
    api_key, source = _api_key(name, table, preset, env)
    provider = str(table.get("name") or (preset.provider if named_after_preset else name))
    return Upstream(
        name=name,
        provider=provider,
        label=str(table.get("label") or preset.label or name),
        preset=preset,
        base_url=base_url,
        api_key=api_key,
        key_source=source,
        priority=_int(name, "priority", table.get("priority", preset.priority)),
        headers=_headers(name, table.get("headers")),
        allowed=_models(name, table.get("models")),
    )


def _preset_of(name: str, table: Mapping[str, Any]) -> Preset:
    wanted = table.get("preset")
    if wanted is None:
        if name.lower() in PRESETS:
            return PRESETS[name.lower()]
        if not table.get("base_url"):
            raise ValueError(
                f"upstream {name!r} is not a preset ({', '.join(PRESETS)}): give it a "
                "base_url (and api_key or api_key_env), or a preset to start from"
            )
        return CUSTOM
    preset = PRESETS.get(str(wanted).lower())
    if preset is None:
        raise ValueError(
            f"upstream {name!r}: unknown preset {wanted!r} (known: {', '.join(PRESETS)})"
        )
    return preset


def _base_url(name: str, table: Mapping[str, Any], preset: Preset, env: Mapping[str, str]) -> str:
    # The table wins; then <PRESET>_BASE_URL (proxies, tests); then the preset's own.
    url = table.get("base_url") or env.get(f"{preset.key.upper()}_BASE_URL") or preset.base_url
    url = str(url).rstrip("/")
    if "{account_id}" in url:
        account = table.get("account_id") or (env.get(preset.account_env or "") or "")
        if not account:
            raise ValueError(
                f"upstream {name!r} needs the account id in its URL: set "
                f"{preset.account_env} (or account_id in [upstreams.{name}])"
            )
        url = url.replace("{account_id}", str(account))
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"upstream {name!r}: base_url must be an http(s) URL, got {url!r}")
    return url


def _api_key(
    name: str, table: Mapping[str, Any], preset: Preset, env: Mapping[str, str]
) -> tuple[str | None, str]:
    if table.get("api_key"):
        return str(table["api_key"]).strip(), f"api_key in [upstreams.{name}]"
    if table.get("api_key_env"):
        var = str(table["api_key_env"])
        if not env.get(var):
            raise ValueError(f"upstream {name!r} needs an API key: set {var}")
        return env[var].strip(), var
    for var in preset.key_env:
        if env.get(var):
            return env[var].strip(), var
    if preset.key_required and preset is not CUSTOM:
        hint = f" ({preset.key_hint})" if preset.key_hint else ""
        raise ValueError(f"upstream {name!r} needs an API key: set {preset.key_env[0]}{hint}")
    return None, (preset.key_env[0] if preset.key_env else f"api_key in [upstreams.{name}]")


def _int(name: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"upstream {name!r}: {key} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"upstream {name!r}: {key} must be an integer") from None


def _headers(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"upstream {name!r}: headers must be a table of strings")
    return dict(value)


def _models(name: str, value: Any) -> dict[str, tuple[str, ...]] | None:
    """``models = ["a", "b"]`` (allow-list) or ``[upstreams.x.models] alias = "id"``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: () for v in value}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        allowed: dict[str, tuple[str, ...]] = {}
        for alias, model_id in value.items():
            allowed[model_id] = (*allowed.get(model_id, ()), alias)
        return allowed
    raise ValueError(
        f"upstream {name!r}: models must be a list of model ids or a table alias -> model id"
    )
