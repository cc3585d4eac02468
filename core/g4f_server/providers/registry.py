"""The provider registry, built once at start-up from the loaded plugins.

pluggy is only used to discover *who implements what*. Requests are never dispatched
through ``pm.hook``: the router reads the registry's indexes (built here whenever the
model lists change: ``reindex``) and the chosen provider's implementation alone is called
(``ProviderEntry.call``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy
from aiohttp import web

from g4f_server import errors
from g4f_server.capabilities import BY_NAME, HOOK_CAPABILITY, SERVICE_HOOKS
from g4f_server.logs import get_logger
from g4f_server.provider import FallbackModels, ModelInfo, ProviderContext, ProviderInfo
from g4f_server.providers.cooldown import ProviderHealth
from g4f_server.providers.health import Vitals
from g4f_server.providers.loader import PluginFailure
from g4f_server.providers.model_table import ModelTable

log = get_logger("g4f_server.registry")


# A provider's status (health.py) as operators read it (start-up line, ``g4f-server
# providers``).
STATUSES = {
    "working": "working",
    "degraded": "degraded",
    "down": "down",
    "needs_auth": "needs auth",
}


@dataclass(slots=True, frozen=True)
class Route:
    """A provider and one of its models: what the router chooses and the pipeline calls."""

    entry: ProviderEntry
    model: str  # the provider's own model id
    # The model as the provider lists it; None: not listed (upstream lists lag behind),
    # or not looked up (a replayed answer's route).
    info: ModelInfo | None = field(default=None, compare=False)


class StartupError(RuntimeError):
    """A configuration the server must not start with (e.g. duplicate provider names)."""


@dataclass(slots=True)
class ProviderEntry:
    info: ProviderInfo
    plugin_name: str
    impls: dict[str, pluggy.HookImpl] = field(default_factory=dict)
    models: list[ModelInfo] = field(default_factory=list)
    listed: bool = True  # its model list loaded (a fallback list counts)
    error: str | None = None
    # Serving a built-in model list because the live one could not be fetched (the
    # provider returned FallbackModels): still working, but shown as degraded.
    fallback: bool = False
    state: dict[str, Any] = field(default_factory=dict)  # ProviderContext.state
    health: ProviderHealth = field(default_factory=ProviderHealth)  # cooldown.py
    vitals: Vitals = field(default_factory=Vitals)  # what its calls said lately (health.py)
    # Lookups done on every request, computed once: the capability set (impls are fixed
    # after start-up) and the models by lower-case id and alias (rebuilt whenever
    # ``models`` is replaced by a new list).
    _capabilities: frozenset[str] | None = field(default=None, init=False, repr=False)
    _by_key: dict[str, ModelInfo] = field(default_factory=dict, init=False, repr=False)
    _indexed: list[ModelInfo] | None = field(default=None, init=False, repr=False)
    # Built by the registry for the router (``Registry.reindex``): its models as routes
    # by lower-case id and alias (the first listed wins a shared key), and its default
    # model per capability it has (a request naming the provider but no model).
    offered: dict[str, Route] = field(default_factory=dict, init=False, repr=False, compare=False)
    defaults: dict[str, Route] = field(default_factory=dict, init=False, repr=False, compare=False)
    # Its chat hook as f(request, ctx), whatever order its parameters are in (Registry).
    chat: Callable[[Any, ProviderContext], Any] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # What every ProviderContext of this provider shares within one app (the HTTP session
    # first, by which it is recognised): providers/context.py builds it on the first call.
    context_parts: tuple[Any, ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def status(self) -> str:
        """One of STATUSES: ``working``, ``degraded``, ``down`` or ``needs_auth`` (health.py)."""
        return self.vitals.status(
            listed=self.listed, fallback=self.fallback, cooling=self.health.state() == "open"
        )

    @property
    def working(self) -> bool:
        """Whether the last real call or probe succeeded; before any, whether the model
        list loaded."""
        last = self.vitals.last_ok
        return self.listed if last is None else last

    def succeeded(self, seconds: float) -> None:
        """A real call answered after ``seconds`` (the pipeline's report, every request)."""
        health = self.health
        if health.open_until or health.consecutive:  # else the cooldown is closed already
            health.succeeded()
        self.vitals.ok(seconds)

    def failed(self, error: errors.ProviderError) -> None:
        """A real call failed before its answer began."""
        self.health.failed(error)
        self.vitals.failed(error)

    def status_text(self) -> str:
        """The status for people: ``degraded (fallback list)`` says why."""
        status = self.status
        if status == "degraded" and self.fallback:
            return "degraded (fallback list)"
        return STATUSES[status]

    @property
    def capabilities(self) -> frozenset[str]:
        if self._capabilities is None:
            self._capabilities = frozenset(
                HOOK_CAPABILITY[h] for h in self.impls if h in HOOK_CAPABILITY
            )
        return self._capabilities

    def model(self, model_id: str) -> ModelInfo | None:
        """A model of this provider by id or alias (case-insensitive)."""
        if self._indexed is not self.models:
            by_key: dict[str, ModelInfo] = {}
            for m in reversed(self.models):  # the first model listed wins a shared key
                by_key.update(dict.fromkeys((m.id.lower(), *(a.lower() for a in m.aliases)), m))
            self._by_key, self._indexed = by_key, self.models
        return self._by_key.get(model_id.lower())

    def default_model_for(self, capability: str) -> str | None:
        known = BY_NAME.get(capability)
        field_name = known.default_model_field if known else None
        explicit = getattr(self.info, field_name) if field_name else None
        if explicit:
            return explicit
        for m in self.models:
            if capability in m.capabilities:
                return m.id
        return None

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call this provider's implementation of ``hook`` with the arguments it takes."""
        impl = self.impls.get(hook)
        if impl is None:
            raise errors.UnsupportedCapabilityError(
                f"Provider '{self.name}' does not support {HOOK_CAPABILITY.get(hook, hook)}"
            )
        return impl.function(*[kwargs[arg] for arg in impl.argnames])


@dataclass(slots=True)
class FailedProvider:
    name: str
    error: str


class Registry:
    def __init__(
        self,
        entries: list[ProviderEntry],
        failures: list[PluginFailure],
        priority: list[str] | None = None,
        ignored: list[str] | None = None,
    ) -> None:
        ignored_keys = {name.lower() for name in ignored or []}
        self.failed = [FailedProvider(f.name, f.reason) for f in failures]
        by_name: dict[str, ProviderEntry] = {}
        for entry in entries:
            key = entry.name.lower()
            if key in ignored_keys:
                continue
            if key in by_name:
                other = by_name[key].plugin_name
                raise StartupError(
                    f"Duplicate provider name '{entry.name}' "
                    f"(plugins '{other}' and '{entry.plugin_name}')"
                )
            by_name[key] = entry
        # Aliases (e.g. gpt4free's class names) answer like the name; a real name wins.
        by_alias: dict[str, ProviderEntry] = {}
        for entry in by_name.values():
            for alias in entry.info.aliases:
                if alias.lower() not in by_name:
                    by_alias.setdefault(alias.lower(), entry)
        rank = {name.lower(): i for i, name in enumerate(priority or [])}
        # Deterministic order: configured priority, then the provider's own, then name.
        self.ordered: list[ProviderEntry] = sorted(
            by_name.values(),
            key=lambda e: (rank.get(e.name.lower(), len(rank)), e.info.priority, e.name.lower()),
        )
        for entry in self.ordered:
            entry.chat = _positional(entry.impls.get("chat"))
        self.capable: dict[str, tuple[ProviderEntry, ...]] = {
            capability: tuple(e for e in self.ordered if capability in e.capabilities)
            for capability in set(HOOK_CAPABILITY.values())
        }
        # A provider by lower-case name or alias (a real name wins over an alias).
        self.names: dict[str, ProviderEntry] = {**by_alias, **by_name}
        # Who serves a model: lower-case id or alias -> routes, in registry order.
        self.offers: dict[str, tuple[Route, ...]] = {}
        # The router's decisions by request shape (providers/router.py), forgotten
        # whenever the indexes or the table change.
        self.decided: dict[Any, tuple[Route, ...]] = {}
        self._table: ModelTable | None = None
        self.reindex()

    @classmethod
    def from_plugins(
        cls,
        pm: pluggy.PluginManager,
        failures: list[PluginFailure],
        *,
        priority: list[str] | None = None,
        ignored: list[str] | None = None,
    ) -> Registry:
        failures = list(failures)
        entries: list[ProviderEntry] = []
        for impl in pm.hook.provider_info.get_hookimpls():
            try:
                info = impl.function()
                if not isinstance(info, ProviderInfo):
                    raise TypeError(f"provider_info returned {type(info).__name__}")
            except Exception as exc:
                log.warning("provider_info_failed", plugin=impl.plugin_name, error=repr(exc))
                failures.append(PluginFailure(impl.plugin_name, f"provider_info failed: {exc!r}"))
                continue
            entry = ProviderEntry(info=info, plugin_name=impl.plugin_name)
            for hook in ("list_models", "auth_status", "probe", *SERVICE_HOOKS):
                for candidate in getattr(pm.hook, hook).get_hookimpls():
                    if candidate.plugin is impl.plugin:
                        entry.impls[hook] = candidate
            entries.append(entry)
        adders = {i.plugin_name for i in pm.hook.providers.get_hookimpls()}
        for plugin_name, _plugin in pm.list_name_plugin():
            if (
                plugin_name not in adders  # its providers are plugins of their own
                and not any(e.plugin_name == plugin_name for e in entries)
                and not any(f.name == plugin_name for f in failures)
            ):
                failures.append(PluginFailure(plugin_name, "plugin has no provider_info hook"))
        return cls(entries, failures, priority=priority, ignored=ignored)

    # --- models ------------------------------------------------------------------------

    async def refresh_models(
        self, make_ctx: Callable[[ProviderEntry], ProviderContext], timeout: float
    ) -> None:
        """Ask every provider for its models (concurrently, each bounded by ``timeout``)."""

        async def one(entry: ProviderEntry) -> None:
            if "list_models" not in entry.impls:
                return
            try:
                result = entry.call("list_models", ctx=make_ctx(entry))
                if inspect.isawaitable(result):
                    result = await asyncio.wait_for(result, timeout)
                fallback = isinstance(result, FallbackModels)
                models = list(result or [])
                if not all(isinstance(m, ModelInfo) for m in models):
                    raise TypeError("list_models must return ModelInfo objects")
            except Exception as exc:
                # Keep the last good list; a provider with no list at all is not working.
                log.warning("list_models_failed", provider=entry.name, error=repr(exc))
                if not entry.models:
                    entry.listed = False
                    entry.error = f"listing models failed: {type(exc).__name__}: {exc}"
                return
            entry.models = models
            entry.listed, entry.error, entry.fallback = True, None, fallback

        await asyncio.gather(*(one(e) for e in self.ordered))
        self.reindex()

    def reindex(self) -> None:
        """Rebuild what the router reads from the model lists (after they change)."""
        offers: dict[str, list[Route]] = {}
        for entry in self.ordered:
            entry.offered = {}
            for model in entry.models:
                route = Route(entry, model.id, model)
                for key in {model.id.lower(), *(a.lower() for a in model.aliases)}:
                    offers.setdefault(key, []).append(route)
                    entry.offered.setdefault(key, route)
            entry.defaults = {}
            for capability in entry.capabilities:
                default = entry.default_model_for(capability)
                if default:
                    entry.defaults[capability] = Route(entry, default, entry.model(default))
        self.offers = {key: tuple(routes) for key, routes in offers.items()}
        self.decided.clear()

    @property
    def table(self) -> ModelTable | None:
        """The routing table of public names (set by create_app)."""
        return self._table

    @table.setter
    def table(self, table: ModelTable | None) -> None:
        self._table = table
        self.decided.clear()

    # --- lookups -----------------------------------------------------------------------

    def get(self, name: str) -> ProviderEntry | None:
        """A provider by name or alias (case-insensitive)."""
        return self.names.get(name.lower())

    def serving(self, model: str) -> list[tuple[ProviderEntry, str]]:
        """(provider, model id) pairs that serve ``model`` (id or alias), in order."""
        return [(r.entry, r.model) for r in self.offers.get(model.lower(), ())]

    def summary(self) -> str:
        """Every provider and its status in one line, e.g. ``Pollinations: working,
        Copilot: degraded (fallback list), Broken: down``."""
        parts = [f"{e.name}: {e.status_text()}" for e in self.ordered]
        parts += [f"{f.name}: {STATUSES['down']}" for f in self.failed]
        return ", ".join(parts) or "none"

    def with_capability(self, capability: str) -> list[ProviderEntry]:
        return list(self.capable.get(capability, ()))


def _positional(impl: pluggy.HookImpl | None) -> Callable[[Any, ProviderContext], Any] | None:
    """A chat hook as f(request, ctx): pluggy passes arguments by name, and an
    implementation may take them in any order, or only some of them."""
    if impl is None:
        return None
    function, names = impl.function, tuple(impl.argnames)
    if names == ("request", "ctx"):
        return function
    return lambda request, ctx: function(*[{"request": request, "ctx": ctx}[n] for n in names])


REGISTRY: web.AppKey[Registry] = web.AppKey("registry")  # the providers, built once
