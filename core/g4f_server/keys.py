"""Typed keys for what the app holds (aiohttp ``web.AppKey``), all in one place."""

from __future__ import annotations

from typing import Any

import aiohttp
import pluggy
from aiohttp import web

from g4f_server.apikeys import KeyRing
from g4f_server.config import AppConfig
from g4f_server.conversations import ConversationStore, ResponseStore
from g4f_server.media import MediaPublisher
from g4f_server.registry import Registry
from g4f_server.storage.cookies import CookieStore
from g4f_server.storage.media import MediaStore

CONFIG = web.AppKey("config", AppConfig)
REGISTRY = web.AppKey("registry", Registry)
PLUGIN_MANAGER = web.AppKey("plugin_manager", pluggy.PluginManager)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CONVERSATIONS = web.AppKey("conversations", ConversationStore)
RESPONSES = web.AppKey("responses", ResponseStore)  # stored Responses API objects
MEDIA = web.AppKey("media", MediaPublisher)
MEDIA_STORE = web.AppKey("media_store", MediaStore)
COOKIES = web.AppKey("cookies", CookieStore)
KEYRING = web.AppKey("keyring", KeyRing)  # absent when the server needs no key
OPENAPI_SPEC = web.AppKey("openapi_spec", dict)  # built on first use, then kept

# Per-request values: set by the middleware and the routes, read by the access log.
REQUEST_ID = web.RequestKey("request_id", str)
SERVED_BY = web.RequestKey("served_by", tuple)  # (provider, model, attempts)
KEY_NAME = web.RequestKey("key_name", str)  # the name of the key the request carried


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


CONTROLLED = web.RequestKey("controlled", Controlled)
