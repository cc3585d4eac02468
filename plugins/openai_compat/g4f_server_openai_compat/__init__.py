"""OpenAI-compatible upstreams for g4f-server: the free API tiers (Gemini, Groq,
OpenRouter, Cerebras, Mistral, GitHub Models, NVIDIA, Hugging Face, Cloudflare Workers
AI), local model servers (Ollama, LM Studio, llama.cpp, vLLM) and paid APIs (OpenAI,
DeepInfra, Together), each as a provider of its own.

Nothing is on until the operator says so (``--upstreams groq,gemini`` or
``[upstreams.NAME]`` tables in the config file): a key that merely exists in the
environment never turns a paid upstream on. Importing this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from g4f_server import hookimpl
from g4f_server_openai_compat.presets import PRESETS
from g4f_server_openai_compat.provider import UpstreamProvider, provider_for
from g4f_server_openai_compat.upstreams import resolve_all

__all__ = ["PRESETS", "UpstreamProvider", "providers"]
__version__ = "0.1.0"


@hookimpl
def providers(settings: Mapping[str, Any]) -> list[object]:
    """One provider per upstream of ``settings["upstreams"]``; ``ValueError`` naming the
    missing variable for one that cannot work (a preset turned on without its key)."""
    return [provider_for(up) for up in resolve_all(settings.get("upstreams") or {})]
