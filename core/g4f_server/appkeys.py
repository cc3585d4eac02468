"""Typed keys for what the app holds (aiohttp ``web.AppKey``) that belong to no wing:
the config, the shared HTTP session, the plugin manager and the per-request values every
layer reads. A key of a wing's own type lives beside that type (``REGISTRY`` in
``providers/registry.py``, the stores' in ``storage/interfaces.py``, ``MEDIA`` in
``pipeline/media.py``, ``KEYRING`` in ``controls/apikeys.py``), so that the foundation
imports no wing, not even for a type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp
    import pluggy

    from g4f_server.config import AppConfig

CONFIG: web.AppKey[AppConfig] = web.AppKey("config")
PLUGIN_MANAGER: web.AppKey[pluggy.PluginManager] = web.AppKey("plugin_manager")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")
OPENAPI_SPEC: web.AppKey[dict[str, Any]] = web.AppKey("openapi_spec")  # built on first use

# Per-request values: set by the middleware and the routes, read by the access log.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
# (provider, model, attempts) of the provider that served the request
SERVED_BY: web.RequestKey[tuple[str, str, int]] = web.RequestKey("served_by")
KEY_NAME: web.RequestKey[str] = web.RequestKey("key_name")  # the name of the key it carried
