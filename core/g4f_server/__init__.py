"""g4f-server: an OpenAI-compatible gateway to free AI providers.

Provider plugins import what they need from here::

    from g4f_server import hookimpl, events, errors
    from g4f_server.provider import ProviderInfo, ModelInfo, ProviderContext
"""

from g4f_server.hookspecs import HOOK_API_VERSION, hookimpl

__version__ = "0.1.0"
__all__ = ["HOOK_API_VERSION", "__version__", "hookimpl"]
