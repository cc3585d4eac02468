"""Copilot's modes exposed as model ids (upstreams.md 1.9)."""

from __future__ import annotations

from g4f_server.provider import ModelInfo

DEFAULT_MODEL = "Copilot"
DEFAULT_IMAGE_MODEL = "Copilot"

# The upstream has no native tool calling, so no model claims "tools": the router then
# never sends a request with tools here. Vision is listed because logged-in users have
# it; anonymous vision requests fail with ProviderAuthError before any network call,
# which lets the router fail over.
_BASE = frozenset({"chat", "vision"})

# model id -> (upstream mode, aliases, description)
MODES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "Copilot": (
        "chat",
        ("copilot", "chat", "gpt-4", "gpt-4o", "gpt-4o-mini", "dall-e-3"),
        "Quick responses (mode 'chat'). Also draws images when asked.",
    ),
    "Think Deeper": (
        "reasoning",
        ("think-deeper", "reasoning", "o1", "o1-preview", "o3-mini"),
        "Slower, shows its reasoning (mode 'reasoning').",
    ),
    "Smart (GPT-5)": (
        "smart",
        ("smart", "gpt-5", "GPT-5"),
        "Picks quick or deep answers itself (mode 'smart').",
    ),
    "Study": ("study", ("study",), "Step-by-step tutoring (mode 'study')."),
    "Search": ("search", ("search",), "Answers from web search with sources (mode 'search')."),
}


def mode_for(model: str) -> str:
    """The upstream mode for a model id; unknown names follow the substring rules."""
    if model in MODES:
        return MODES[model][0]
    name = model.lower()
    if any(key in name for key in ("reasoning", "think", "o1", "o3")):
        return "reasoning"
    if "smart" in name or "gpt-5" in name:
        return "smart"
    if "study" in name:
        return "study"
    if "search" in name:
        return "search"
    return "chat"


def model_list() -> list[ModelInfo]:
    models = []
    for model_id, (mode, aliases, description) in MODES.items():
        caps = set(_BASE)
        if mode == "reasoning":
            caps.add("reasoning")
        if model_id == DEFAULT_IMAGE_MODEL:
            caps.add("image")  # image requests are answered in the default (chat) mode
        models.append(
            ModelInfo(
                id=model_id,
                capabilities=frozenset(caps),
                aliases=aliases,
                owned_by="Microsoft",
                description=description,
                extra={"mode": mode, "vision_requires_login": True},
            )
        )
    return models
