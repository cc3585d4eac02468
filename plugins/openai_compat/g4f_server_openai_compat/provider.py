"""One provider object per upstream: the hooks the kernel calls, each delegating to the
module that does the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from g4f_server import hookimpl
from g4f_server.provider import Embeddings, ModelInfo, ProviderContext, ProviderInfo
from g4f_server_openai_compat import chat as _chat
from g4f_server_openai_compat import embeddings as _embeddings
from g4f_server_openai_compat import failures, models
from g4f_server_openai_compat.upstreams import Upstream

if TYPE_CHECKING:  # pydantic models: imported by the kernel with the first request
    from g4f_server.requests import ChatRequest, EmbeddingRequest


class UpstreamProvider:
    """The provider for one upstream. ``name`` names the plugin the kernel registers
    (``<plugin>.<name>``); identity equality, as pluggy compares plugins with ``==``."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.name = upstream.provider

    def __repr__(self) -> str:
        return f"UpstreamProvider({self.upstream.name!r} -> {self.upstream.base_url})"

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        up = self.upstream
        preset = up.preset
        needs_key = preset.key_required and not preset.local
        return ProviderInfo(
            name=up.provider,
            label=up.label,
            url=preset.url or up.base_url,
            auth="required" if needs_key else "optional",
            auth_hint=f"key from {up.key_source}; {preset.key_hint}".rstrip("; "),
            description=f"OpenAI-compatible upstream {up.name!r} at {up.base_url}",
            priority=up.priority,
            public_names=True,  # a built-in plugin: serves gpt-4o & co. (docs/plugins.md)
            default_embedding_model=self._embedding_model(),
        )

    def _embedding_model(self) -> str | None:
        return None

    @hookimpl
    def auth_status(self, ctx: ProviderContext) -> dict[str, Any]:
        up = self.upstream
        refused = ctx.state.get("refused_keys", {}).get(failures.fingerprint(up.api_key))
        if refused:
            return {"logged_in": False, "detail": refused}
        if up.api_key:
            return {"logged_in": True, "detail": f"key from {up.key_source}"}
        return {"logged_in": not up.preset.key_required, "detail": "no key (not needed)"}

    @hookimpl
    async def list_models(self, ctx: ProviderContext) -> list[ModelInfo]:
        return await models.list_models(self.upstream, ctx)

    @hookimpl
    def chat(self, request: ChatRequest, ctx: ProviderContext) -> AsyncIterator[Any]:
        return _chat.chat(self.upstream, request, ctx)


class EmbeddingUpstreamProvider(UpstreamProvider):
    """An upstream whose preset has ``POST /embeddings``: the ``embed`` hook is what
    gives a provider the embeddings capability, so only these have it."""

    def _embedding_model(self) -> str | None:
        """The preset's default embedding model, unless the operator's allow-list
        leaves it out (then the first embedding model listed is the default)."""
        model, allowed = self.upstream.preset.embedding_model, self.upstream.allowed
        return model if allowed is None or model in allowed else None

    @hookimpl
    async def embed(self, request: EmbeddingRequest, ctx: ProviderContext) -> Embeddings:
        return await _embeddings.embed(self.upstream, request, ctx)


def provider_for(upstream: Upstream) -> UpstreamProvider:
    if upstream.preset.embeddings:
        return EmbeddingUpstreamProvider(upstream)
    return UpstreamProvider(upstream)
