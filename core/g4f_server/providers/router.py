"""Which provider (and which of its models) serves a request, in the order to try them.

Rules, first match wins:
1. an explicit provider (``/api/{provider}/...`` route or the ``provider`` field);
2. ``provider:model`` in the model name, when ``provider`` is a known provider;
3. a provider name used as the model (its default model);
4. a model id a provider lists: every provider listing it, in registry order (a listed
   id is never shadowed by the table);
5. a public name of the routing table (``model_table.py``): its targets, in order;
6. a model alias: every provider serving it, in registry order;
7. no model: the configured default provider/model, else every capable provider.

The rules read only the registry's indexes (``Registry.names``, ``offers``, ``capable``
and each provider's ``offered`` and ``defaults``, rebuilt whenever the model lists
change), and a decision is kept by the request's shape (``Registry.decided``): a request
like an earlier one costs one dict lookup. Of several candidates, the healthy ones come
first, decided afresh for every request: providers cooling down or ``down`` are skipped,
and those whose last call failed lately are tried last.
"""

from __future__ import annotations

from collections.abc import Sequence

from g4f_server import errors
from g4f_server.config import AppConfig
from g4f_server.providers.model_table import Target
from g4f_server.providers.registry import ProviderEntry, Registry, Route

__all__ = ["Route", "provider_named", "resolve", "table_routes"]

_DEFAULTS = {"chat": ("provider", "model"), "image": ("image_provider", "image_model")}
DECIDED_MAX = 4096  # request shapes remembered: model names come from clients


def resolve(
    registry: Registry,
    config: AppConfig,
    *,
    capability: str,
    model: str = "",
    provider: str | None = None,
    needs: frozenset[str] = frozenset(),
) -> Sequence[Route]:
    """The routes to try, in order; a request no provider can serve raises the error
    that says why (not found, or what the model lacks)."""
    shape = (capability, model, provider, needs)
    routes = registry.decided.get(shape)
    if routes is None:
        name = (model or "").strip()
        routes = _decide(registry, config, capability, name, provider, needs)
        # Only the defaults (no model, no provider) depend on the config: not kept.
        if (provider or name) and len(registry.decided) < DECIDED_MAX:
            registry.decided[shape] = routes
    if len(routes) > 1:
        # Providers cooling down (``down``: a failed probe or failures in a row) are
        # skipped, one trial request each once the cooldown is over; if every one is,
        # they are all tried: an answer late is better than none.
        routes = [r for r in routes if r.entry.health.available()] or routes
        # Those whose last real call failed a moment ago go after the others (health.py).
        late = [r.entry.vitals.demoted() for r in routes]
        if any(late):
            routes = [r for r, d in zip(routes, late, strict=True) if not d] + [
                r for r, d in zip(routes, late, strict=True) if d
            ]
    return routes


def _decide(
    registry: Registry,
    config: AppConfig,
    capability: str,
    model: str,
    provider: str | None,
    needs: frozenset[str],
) -> tuple[Route, ...]:
    needs = needs | {capability}
    names = registry.names
    if not provider and ":" in model:
        head, tail = model.split(":", 1)
        if head.lower() in names:
            provider, model = head, tail
    if not provider and model and model.lower() in names and model.lower() not in registry.offers:
        provider, model = model, ""
    if provider:
        return (_explicit(registry, provider, model, capability, needs),)

    if not model:
        provider_field, model_field = _DEFAULTS.get(capability, (None, None))
        default_provider = getattr(config, provider_field) if provider_field else None
        default_model = (getattr(config, model_field) if model_field else None) or ""
        if default_provider:
            return (_explicit(registry, default_provider, default_model, capability, needs),)
        if not default_model:
            routes = tuple(
                route
                for entry in registry.capable.get(capability, ())
                if (route := entry.defaults.get(capability)) is not None
                and (route.info is None or needs <= route.info.capabilities)
            )
            if not routes:
                raise errors.ModelNotFoundError(
                    f"No installed provider can serve {capability} requests", param="model"
                )
            return routes
        model = default_model

    key = model.lower()
    serving = [r for r in registry.offers.get(key, ()) if capability in r.entry.capabilities]
    table = registry.table
    targets = table.lookup(model) if table is not None else None
    if targets is not None and not any(r.model.lower() == key for r in serving):
        # The built-in table's "*" means the providers that opted in to public names;
        # an operator's own table means what it says.
        opted_in = table is not None and table.built_in
        candidates = table_routes(registry, targets, model, capability, public_only=opted_in)
        if candidates:
            return _capable(candidates, model, capability, needs)
    routes = tuple(r for r in serving if needs <= _capabilities(r))
    if routes:
        return routes
    if serving:
        missing = needs - _capabilities(serving[0])
        raise errors.UnsupportedCapabilityError(
            f"Model '{model}' does not support {', '.join(sorted(missing))}", param="model"
        )
    raise errors.ModelNotFoundError(f"Model '{model}' not found", param="model")


def table_routes(
    registry: Registry,
    targets: tuple[Target, ...],
    name: str,
    capability: str,
    *,
    public_only: bool = False,
) -> list[Route]:
    """The routes of a public name's targets that can serve ``capability``, in order,
    each provider's own model for the name when it lists one. ``public_only``: ``"*"``
    is only the providers whose ``ProviderInfo.public_names`` is true."""
    routes: list[Route] = []
    seen: set[tuple[str, str]] = set()
    for target in targets:
        if target.provider is None:
            entries: Sequence[ProviderEntry] = registry.capable.get(capability, ())
            if public_only:
                entries = [e for e in entries if e.info.public_names]
        else:
            entry = registry.names.get(target.provider.lower())
            entries = [entry] if entry is not None and capability in entry.capabilities else []
        for entry in entries:
            if target.model:
                route = entry.offered.get(target.model.lower()) or Route(entry, target.model)
            else:
                route = entry.offered.get(name.lower())
                if route is None or capability not in _capabilities(route):
                    route = entry.defaults.get(capability) or Route(entry, "")
            if route.model and (entry.name, route.model) not in seen:
                seen.add((entry.name, route.model))
                routes.append(route)
    return routes


def _capabilities(route: Route) -> frozenset[str]:
    return route.info.capabilities if route.info is not None else frozenset()


def _capable(
    candidates: list[Route], name: str, capability: str, needs: frozenset[str]
) -> tuple[Route, ...]:
    """The candidates able to answer; none: a 400 naming what each one lacks."""
    lacking = []
    routes = []
    for route in candidates:
        # A model the provider does not list: only what the request's kind needs is assumed.
        caps = route.info.capabilities if route.info is not None else frozenset({capability})
        missing = needs - caps
        if missing:
            lacking.append(f"{route.entry.name}:{route.model} lacks {', '.join(sorted(missing))}")
        else:
            routes.append(route)
    if routes:
        return tuple(routes)
    wanted = ", ".join(sorted(needs - {capability}))
    raise errors.UnsupportedCapabilityError(
        f"No provider of model '{name}' supports {wanted} ({'; '.join(lacking)})",
        param="model",
    )


def provider_named(registry: Registry, name: str) -> ProviderEntry:
    """A provider by name or alias, else the error that says it is missing or broken."""
    entry = registry.names.get(name.lower())
    if entry is None:
        failed = next((f for f in registry.failed if f.name.lower() == name.lower()), None)
        if failed:
            reason = f"Provider '{name}' is not working: {failed.error}"
            raise errors.ProviderNotWorkingError(reason)
        raise errors.ProviderNotFoundError(f"Provider '{name}' not found", param="provider")
    return entry


def _explicit(
    registry: Registry, name: str, model: str, capability: str, needs: frozenset[str]
) -> Route:
    entry = provider_named(registry, name)
    if capability not in entry.capabilities:
        raise errors.UnsupportedCapabilityError(
            f"Provider '{entry.name}' does not support {capability}", param="provider"
        )
    if not model:
        default = entry.defaults.get(capability)
        model = default.model if default is not None else ""
    route = entry.offered.get(model.lower()) if model else None
    if route is None:
        # An id the provider does not list is passed through: upstream lists lag behind.
        return Route(entry, model)
    missing = needs - _capabilities(route)
    if missing:
        raise errors.UnsupportedCapabilityError(
            f"Model '{route.model}' of provider '{entry.name}' does not support "
            f"{', '.join(sorted(missing))}",
            param="model",
        )
    return route
