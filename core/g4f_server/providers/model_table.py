"""The routing table: public model names (globs allowed) -> ordered targets.

A target is ``"Provider:model"``, ``"Provider"`` (the provider's own model for the name
if it lists one, else its default model for the kind of request) or ``"*"`` (every
installed provider that can serve the kind of request, in priority order, each as with
``"Provider"``). The operator's table comes from ``[models]`` of the config file; without
one the built-in table below maps the OpenAI and Anthropic names clients send by default
onto every installed provider that opted in (``ProviderInfo.public_names``: the built-in
plugins do; installing a third-party plugin never makes it a target for ``gpt-4o``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EVERY = "*"
_SEEN_MAX = 4096  # model names remembered per table


@dataclass(slots=True, frozen=True)
class Target:
    provider: str | None  # None: every provider that can serve the request
    model: str | None = None  # None: its model for the name, else its default

    @classmethod
    def parse(cls, text: str) -> Target:
        text = text.strip()
        if text == EVERY:
            return cls(None)
        provider, _, model = text.partition(":")
        if not provider.strip():
            raise ValueError(f"target {text!r} needs a provider name")
        return cls(provider.strip(), model.strip() or None)

    def __str__(self) -> str:
        if self.provider is None:
            return EVERY
        return f"{self.provider}:{self.model}" if self.model else self.provider


_EVERYONE = (Target(None),)
# OpenAI's and Anthropic's common names -> every provider that can serve the request.
BUILT_IN: dict[str, tuple[Target, ...]] = dict.fromkeys(
    (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1*",
        "gpt-4",
        "gpt-3.5-turbo",
        "gpt-5*",
        "o1*",
        "o3*",
        "o4*",
        "claude-*",  # Claude Code sends dated names (claude-sonnet-4-5-20250929)
        "dall-e-2",
        "dall-e-3",
        "gpt-image-1",
        "tts-1*",
        "gpt-4o-mini-tts",
        "whisper-1",
        "text-embedding-*",  # -3-small, -3-large, -ada-002: OpenAI's embedding models
    ),
    _EVERYONE,
)


@dataclass(slots=True, frozen=True)
class ModelTable:
    exact: Mapping[str, tuple[Target, ...]]  # lower-case name -> targets
    globs: tuple[tuple[str, tuple[Target, ...]], ...]  # in the table's order
    names: tuple[str, ...]  # the public names as written (for /v1/models)
    # The built-in table (no [models] of the operator's): its "*" is every provider that
    # opted in with ProviderInfo.public_names, never a plugin that merely got installed.
    built_in: bool = False

    @classmethod
    def build(cls, table: Mapping[str, Any] | None) -> ModelTable:
        """The operator's ``[models]`` table, or the built-in one when it is empty."""
        if not table:
            return cls._of(BUILT_IN, built_in=True)
        parsed: dict[str, tuple[Target, ...]] = {}
        for name, value in table.items():
            targets = [value] if isinstance(value, str) else value
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise ValueError(f"models.{name} must be a target or a list of targets")
            if not targets:
                raise ValueError(f"models.{name} needs at least one target")
            parsed[name] = tuple(Target.parse(t) for t in targets)
        return cls._of(parsed)

    @classmethod
    def _of(cls, table: Mapping[str, tuple[Target, ...]], *, built_in: bool = False) -> ModelTable:
        exact = {n.lower(): t for n, t in table.items() if not is_glob(n)}
        globs = tuple((n.lower(), t) for n, t in table.items() if is_glob(n))
        return cls(exact, globs, tuple(table), built_in)

    # name as sent -> its lookup: the globs are tried once per name, not per request (the
    # built-in table's took ~7 fnmatch calls a request). Bounded: names come from clients.
    _seen: dict[str, tuple[Target, ...] | None] = field(default_factory=dict, compare=False)

    def lookup(self, name: str) -> tuple[Target, ...] | None:
        try:
            return self._seen[name]
        except KeyError:
            pass
        key = name.lower()
        found = self.exact.get(key)
        if found is None:
            found = next((t for glob, t in self.globs if fnmatch.fnmatchcase(key, glob)), None)
        if len(self._seen) < _SEEN_MAX:
            self._seen[name] = found
        return found


def is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")
