"""Finding and loading provider plugins.

Plugins come from the entry point group ``g4f_server`` (installed packages) and, for
tests and embedding, from objects passed in directly. A plugin that fails to import or
to register is recorded as a ``PluginFailure`` and skipped: one broken package must
never stop the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from g4f_server import hookspecs
from g4f_server.config import ConfigError
from g4f_server.logs import get_logger

ENTRY_POINT_GROUP = hookspecs.PROJECT
log = get_logger("g4f_server.plugins")


@dataclass(slots=True, frozen=True)
class PluginFailure:
    name: str
    reason: str


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _selected(name: str, allow: list[str] | None, deny: list[str]) -> bool:
    key = name.lower()
    if allow is not None and key not in {a.lower() for a in allow}:
        return False
    return key not in {d.lower() for d in deny}


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """Modules by module name; objects by their ``name`` attribute or class name."""
    base = getattr(plugin, "__name__", None) or getattr(plugin, "name", None)
    return _unique(pm, base if isinstance(base, str) else type(plugin).__name__)


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> PluginFailure | None:
    """Register one plugin; on a contract violation undo it and report why."""
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # pluggy raises ValueError / PluginValidationError
        return PluginFailure(name, f"{type(exc).__name__}: {exc}")
    try:
        pm.check_pending()  # a hookimpl with no matching spec is a typo
    except pluggy.PluginValidationError as exc:
        pm.unregister(plugin)
        return PluginFailure(name, f"unknown hook: {exc}")
    return None


def load_plugins(
    pm: pluggy.PluginManager,
    *,
    plugins: list[object] | None = None,
    load_entrypoints: bool = True,
    allow: list[str] | None = None,
    deny: list[str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> list[PluginFailure]:
    """Register ``plugins`` and every selected entry point, then the providers that
    their ``providers`` hooks add; return what failed. Raises ``ConfigError`` when a
    ``providers`` hook refuses the settings (the server must not start)."""
    failures = _load(pm, plugins, load_entrypoints, allow, deny or [])
    failures += _add_providers(pm, settings or {})
    return failures


def _add_providers(pm: pluggy.PluginManager, settings: Mapping[str, Any]) -> list[PluginFailure]:
    failures: list[PluginFailure] = []
    for impl in pm.hook.providers.get_hookimpls():
        try:
            made = impl.function(*[settings for _ in impl.argnames])
        except ValueError as exc:
            raise ConfigError(f"{impl.plugin_name}: {exc}") from None
        except Exception as exc:
            log.warning("plugin_providers_failed", plugin=impl.plugin_name, error=repr(exc))
            failures.append(PluginFailure(impl.plugin_name, f"providers failed: {exc!r}"))
            continue
        for obj in made or []:
            label = getattr(obj, "name", None)
            name = f"{impl.plugin_name}.{label if isinstance(label, str) else type(obj).__name__}"
            if failure := register_plugin(pm, obj, _unique(pm, name)):
                log.warning("plugin_invalid", plugin=name, error=failure.reason)
                failures.append(failure)
    return failures


def _unique(pm: pluggy.PluginManager, base: str) -> str:
    name, n = base, 1
    while pm.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return name


def _load(
    pm: pluggy.PluginManager,
    plugins: list[object] | None,
    load_entrypoints: bool,
    allow: list[str] | None,
    deny: list[str],
) -> list[PluginFailure]:
    failures: list[PluginFailure] = []
    for plugin in plugins or []:
        name = _plugin_name(pm, plugin)
        if _selected(name, allow, deny) and (failure := register_plugin(pm, plugin, name)):
            failures.append(failure)
    if not load_entrypoints:
        return failures
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if not _selected(ep.name, allow, deny) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            log.warning(
                "plugin_import_failed", plugin=ep.name, error=f"{type(exc).__name__}: {exc}"
            )
            failures.append(PluginFailure(ep.name, f"import failed: {type(exc).__name__}: {exc}"))
            continue
        if failure := register_plugin(pm, plugin, ep.name):
            log.warning("plugin_invalid", plugin=ep.name, error=failure.reason)
            failures.append(failure)
    return failures
