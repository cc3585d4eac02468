"""A model and provider as the JSON fields every protocol's answer names them by,
``"m","provider":"p"`` (the model's value, then the provider's key and value): the same
few pairs answer every request, so each pair is encoded once (bounded: cleared when
full). Chat completions and Anthropic Messages splice it into their byte templates."""

from __future__ import annotations

from g4f_server.web.jsonio import dumps

_NAMED: dict[tuple[str, str], bytes] = {}
NAMED_MAX = 256


def named_fields(model: str, provider: str) -> bytes:
    """``dumps(model) + b',"provider":' + dumps(provider)``, from the cache."""
    fields = _NAMED.get((model, provider))
    if fields is None:
        if len(_NAMED) >= NAMED_MAX:
            _NAMED.clear()
        fields = _NAMED[model, provider] = dumps(model) + b',"provider":' + dumps(provider)
    return fields


def cached() -> int:
    """How many pairs the cache holds."""
    return len(_NAMED)
