"""What a public name of the routing table routes to, as ``/v1/models`` and the chat page
show it: its kind (chat, image, speech, transcription), the provider models it reaches
for that kind, in the order they are tried, and what they can do.

The router accepts a public name for every kind of request (a ``"*"`` target falls back
to each provider's default model for the kind), so "everything it can reach" would
label ``whisper-1`` a chat model and ``dall-e-3`` a speech model. A name's kind is
therefore decided once, here:

1. the names OpenAI gives its non-chat models (``dall-e-*``, ``tts-*``, ``whisper-*``...)
   are of that kind, whatever the table says;
2. else the kinds of the models its targets name (a provider listing the name as an id
   or alias, or a ``Provider:model`` target), the kinds all of them share first, and
   chat alone when chat is one of them (Copilot's chat model, which also draws, lists
   ``gpt-4o`` as an alias: ``gpt-4o`` is a chat name);
3. else chat (a name nobody lists, such as ``gpt-4o`` on a keyless server).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from g4f_server.capabilities import HOOK_CAPABILITY
from g4f_server.provider import ModelInfo
from g4f_server.providers.model_table import Target
from g4f_server.providers.registry import Registry
from g4f_server.providers.router import Route, table_routes

SERVICES: tuple[str, ...] = tuple(HOOK_CAPABILITY.values())  # chat, image, speech, ...
# OpenAI's own naming of its non-chat models (lower case, globs).
KNOWN_KINDS: tuple[tuple[str, str], ...] = (
    ("dall-e-*", "image"),
    ("gpt-image-*", "image"),
    ("tts-*", "speech"),
    ("*-tts", "speech"),
    ("whisper-*", "transcription"),
    ("*-transcribe", "transcription"),
)


@dataclass(slots=True, frozen=True)
class PublicName:
    name: str
    targets: tuple[Target, ...]
    kinds: tuple[str, ...]  # in SERVICES order
    routes: tuple[tuple[str, Route], ...]  # (kind, route), in the order tried per kind

    @property
    def providers(self) -> list[str]:
        return list(dict.fromkeys(route.entry.name for _, route in self.routes))

    @property
    def capabilities(self) -> set[str]:
        """The name's kinds and what the models it reaches for them can do (the router
        picks among them by what a request needs); other services of those models are
        not the name's (a chat model that also draws does not make ``gpt-4o`` an image
        name)."""
        caps = set(self.kinds)
        for _, route in self.routes:
            info = route.entry.model(route.model)
            if info is not None:
                caps |= info.capabilities - set(SERVICES)
        return caps


def known_kind(name: str) -> str | None:
    key = name.lower()
    return next((kind for glob, kind in KNOWN_KINDS if fnmatch.fnmatchcase(key, glob)), None)


def _named_models(registry: Registry, targets: tuple[Target, ...], name: str) -> list[ModelInfo]:
    found = []
    for target in targets:
        if target.provider is None:
            entries = registry.ordered
        else:
            entry = registry.get(target.provider)
            entries = [entry] if entry is not None else []
        for entry in entries:
            info = entry.model(target.model or name)
            if info is not None:
                found.append(info)
    return found


def kinds_of(registry: Registry, targets: tuple[Target, ...], name: str) -> tuple[str, ...]:
    if (kind := known_kind(name)) is not None:
        return (kind,)
    named = [set(m.capabilities) & set(SERVICES) for m in _named_models(registry, targets, name)]
    named = [kinds for kinds in named if kinds]
    if named:
        kinds = set.intersection(*named) or set.union(*named)
        if "chat" in kinds:  # a chat model that also draws (Copilot) names a chat model
            return ("chat",)
        return tuple(k for k in SERVICES if k in kinds)
    return ("chat",)


def public_name(registry: Registry, name: str) -> PublicName | None:
    """The public name ``name`` (exact or matched by a glob); None when the table does not
    have it or no installed provider can serve it."""
    targets = registry.table.lookup(name) if registry.table is not None else None
    if targets is None:
        return None
    kinds = kinds_of(registry, targets, name)
    # The built-in table reaches only providers that opt in (ProviderInfo.public_names).
    public_only = registry.table is not None and registry.table.built_in
    routes = tuple(
        (kind, route)
        for kind in kinds
        for route in table_routes(registry, targets, name, kind, public_only=public_only)
    )
    if not routes:
        return None
    return PublicName(name, targets, kinds, routes)
