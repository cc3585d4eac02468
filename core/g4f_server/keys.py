"""Typed keys for what the app holds (aiohttp ``web.AppKey``), all in one place."""

from __future__ import annotations

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
RATE_LIMITED = web.RequestKey("rate_limited", str)  # the limit kind that refused it
PUBLIC_MODEL = web.RequestKey("public_model", str)  # the model name the client asked for
