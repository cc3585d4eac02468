"""Typed keys for what the app holds (aiohttp ``web.AppKey``), all in one place.

The types they hold are named in annotations only: importing the keys loads nothing of
the gateway, so any module may use them without pulling in (or circling back to) the
modules that define those types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp
    import pluggy

    from g4f_server.config import AppConfig
    from g4f_server.controls.apikeys import KeyRing
    from g4f_server.pipeline.history import ConversationStore, ResponseStore
    from g4f_server.pipeline.media import MediaPublisher
    from g4f_server.providers.registry import Registry
    from g4f_server.storage.cookies import CookieStore
    from g4f_server.storage.media import MediaStore

CONFIG: web.AppKey[AppConfig] = web.AppKey("config")
REGISTRY: web.AppKey[Registry] = web.AppKey("registry")
PLUGIN_MANAGER: web.AppKey[pluggy.PluginManager] = web.AppKey("plugin_manager")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")
CONVERSATIONS: web.AppKey[ConversationStore] = web.AppKey("conversations")
RESPONSES: web.AppKey[ResponseStore] = web.AppKey("responses")  # stored Responses objects
MEDIA: web.AppKey[MediaPublisher] = web.AppKey("media")
MEDIA_STORE: web.AppKey[MediaStore] = web.AppKey("media_store")
COOKIES: web.AppKey[CookieStore] = web.AppKey("cookies")
KEYRING: web.AppKey[KeyRing] = web.AppKey("keyring")  # absent when the server needs no key
OPENAPI_SPEC: web.AppKey[dict[str, Any]] = web.AppKey("openapi_spec")  # built on first use

# Per-request values: set by the middleware and the routes, read by the access log.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
SERVED_BY: web.RequestKey[tuple[str, str, int]] = web.RequestKey(
    "served_by"
)  # provider, model, attempts
KEY_NAME: web.RequestKey[str] = web.RequestKey("key_name")  # the name of the key it carried


class Controlled:
    """What the metrics and the rate limits keep about one request, in one object under
    one request key: each of their per-request hooks then does one lookup, instead of
    one per value (and a missing key costs a KeyError inside aiohttp's mapping). Made by
    the outermost of the two middlewares that is installed."""

    __slots__ = ("limited", "metrics", "public_model", "started", "streaming", "ticket")

    def __init__(self, started: float = 0.0, metrics: Any = None) -> None:
        self.started = started  # perf_counter at the metrics middleware
        self.metrics = metrics  # metrics.Metrics when metrics are on
        self.streaming = False  # counted in the streams-in-progress gauge
        self.ticket: Any = None  # limits.Ticket once the limits admitted it
        self.public_model = ""  # the model name the client asked for
        self.limited: str | None = None  # the limit kind that refused it


CONTROLLED: web.RequestKey[Controlled] = web.RequestKey("controlled")
