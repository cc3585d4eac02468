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

Of several candidates, the healthy ones come first (``resolve``): providers cooling down
or ``down`` are skipped, and those whose last call failed lately are tried last.
"""

from __future__ import annotations

from dataclasses import dataclass

from g4f_server import errors
from g4f_server.config import AppConfig
from g4f_server.providers.model_table import Target
from g4f_server.providers.registry import ProviderEntry, Registry


@dataclass(slots=True, frozen=True)
class Route:
    entry: ProviderEntry
    model: str  # the provider's own model id


_DEFAULTS = {"chat": ("provider", "model"), "image": ("image_provider", "image_model")}


def resolve(
    registry: Registry,
    config: AppConfig,
    *,
    capability: str,
    model: str = "",
    provider: str | None = None,
    needs: frozenset[str] = frozenset(),
) -> list[Route]:
    routes = _resolve(
        registry, config, capability=capability, model=model, provider=provider, needs=needs
    )
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


def _resolve(
    registry: Registry,
    config: AppConfig,
    *,
    capability: str,
    model: str = "",
    provider: str | None = None,
    needs: frozenset[str] = frozenset(),
) -> list[Route]:
    if capability not in needs:
        needs = needs | {capability}
    model = (model or "").strip()
    if not provider and ":" in model:
        head, tail = model.split(":", 1)
        if registry.get(head):
            provider, model = head, tail
    if not provider and model and registry.get(model) and not registry.serving(model):
        provider, model = model, ""
    if provider:
        return [_explicit(registry, registry.provider(provider), model, capability, needs)]

    if not model:
        provider_field, model_field = _DEFAULTS.get(capability, (None, None))
        default_provider = getattr(config, provider_field) if provider_field else None
        default_model = (getattr(config, model_field) if model_field else None) or ""
        if default_provider:
            entry = registry.provider(default_provider)
            return [_explicit(registry, entry, default_model, capability, needs)]
        if default_model:
            model = default_model
        else:
            routes = []
            for entry in registry.with_capability(capability):
                default = entry.default_model_for(capability)
                info = entry.model(default) if default else None
                if default and (info is None or needs <= info.capabilities):
                    routes.append(Route(entry, default))
            if not routes:
                raise errors.ModelNotFoundError(
                    f"No installed provider can serve {capability} requests", param="model"
                )
            return routes

    serving = [
        (entry, model_id)
        for entry, model_id in registry.serving(model)
        if capability in entry.capabilities
    ]
    table = registry.table
    targets = table.lookup(model) if table is not None else None
    if targets is not None and not any(m.lower() == model.lower() for _, m in serving):
        # The built-in table's "*" means the providers that opted in to public names;
        # an operator's own table means what it says.
        opted_in = table is not None and table.built_in
        candidates = table_routes(registry, targets, model, capability, public_only=opted_in)
        if candidates:
            return _capable(candidates, model, capability, needs)
    routes = [Route(e, m) for e, m in serving if needs <= _capabilities(e, m)]
    if routes:
        return routes
    if serving:
        missing = needs - _capabilities(*serving[0])
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
            entries = registry.with_capability(capability)
            if public_only:
                entries = [e for e in entries if e.info.public_names]
        else:
            entry = registry.get(target.provider)
            entries = [entry] if entry is not None and capability in entry.capabilities else []
        for entry in entries:
            if target.model:
                info = entry.model(target.model)
                model_id = info.id if info else target.model
            else:
                info = entry.model(name)
                if info is None or capability not in info.capabilities:
                    model_id = entry.default_model_for(capability) or ""
                else:
                    model_id = info.id
            if model_id and (entry.name, model_id) not in seen:
                seen.add((entry.name, model_id))
                routes.append(Route(entry, model_id))
    return routes


def _capable(
    candidates: list[Route], name: str, capability: str, needs: frozenset[str]
) -> list[Route]:
    """The candidates able to answer; none: a 400 naming what each one lacks."""
    lacking = []
    routes = []
    for route in candidates:
        info = route.entry.model(route.model)
        # A model the provider does not list: only what the request's kind needs is assumed.
        caps = info.capabilities if info else frozenset({capability})
        missing = needs - caps
        if missing:
            lacking.append(f"{route.entry.name}:{route.model} lacks {', '.join(sorted(missing))}")
        else:
            routes.append(route)
    if routes:
        return routes
    wanted = ", ".join(sorted(needs - {capability}))
    raise errors.UnsupportedCapabilityError(
        f"No provider of model '{name}' supports {wanted} ({'; '.join(lacking)})",
        param="model",
    )


def _capabilities(entry: ProviderEntry, model_id: str) -> frozenset[str]:
    info = entry.model(model_id)
    return info.capabilities if info else frozenset()


def _explicit(
    registry: Registry, entry: ProviderEntry, model: str, capability: str, needs: frozenset[str]
) -> Route:
    if capability not in entry.capabilities:
        raise errors.UnsupportedCapabilityError(
            f"Provider '{entry.name}' does not support {capability}", param="provider"
        )
    if not model:
        model = entry.default_model_for(capability) or ""
    info = entry.model(model) if model else None
    if info is not None:
        missing = needs - info.capabilities
        if missing:
            raise errors.UnsupportedCapabilityError(
                f"Model '{info.id}' of provider '{entry.name}' does not support "
                f"{', '.join(sorted(missing))}",
                param="model",
            )
        model = info.id
    # An id the provider does not list is passed through: upstream lists lag behind.
    return Route(entry, model)
