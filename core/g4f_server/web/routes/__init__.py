"""HTTP routes: every route of the gateway in one table, handlers one module per resource.

A handler's module is imported by the first request the route serves, not at start-up:
the chat, embeddings, image, audio and cookie modules bring pydantic and the request
schemas (~8 MB and ~0.1 s), which an idle server does not need. The first such request
pays that once.
"""

from __future__ import annotations

from aiohttp import web

from g4f_server.appkeys import OPENAPI_SPEC
from g4f_server.web.handlers import expect_continue, lazy_handler, request_body
from g4f_server.web.middleware import Edge

__all__ = ["ROUTES", "UNVERSIONED", "lazy_handler", "request_body", "setup_routes"]

# (method, path, "module:handler"): the protocols' routes live in their own folders
# (protocols/<name>/routes.py), the others in this package. Named, never imported here:
# the web layer does not import a protocol (the first request a route serves does).
_CHAT = "g4f_server.protocols.openai_chat.routes:"
_RESPONSES = "g4f_server.protocols.responses.routes:"
_MESSAGES = "g4f_server.protocols.anthropic.routes:"
_COMPLETIONS = "g4f_server.protocols.completions.routes:"
_ANTHROPIC_MODELS = "g4f_server.protocols.anthropic.models:"
_EMBEDDINGS = "g4f_server.protocols.embeddings.routes:"
_HERE = "g4f_server.web.routes."
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/health", _HERE + "health:health"),
    ("GET", "/health/live", _HERE + "health:live"),
    ("GET", "/health/ready", _HERE + "health:ready"),
    ("GET", "/v1/status", _HERE + "status:status_data"),
    ("GET", "/status", _HERE + "gui:status"),
    ("POST", "/v1/chat/completions", _CHAT + "chat_completions"),
    ("POST", "/api/{provider}/chat/completions", _CHAT + "chat_completions"),
    ("POST", "/api/{provider}/{conversation_id}/chat/completions", _CHAT + "chat_completions"),
    ("POST", "/v1/responses", _RESPONSES + "create_response"),
    ("GET", "/v1/responses", "g4f_server.protocols.responses.socket:responses_socket"),
    ("POST", "/v1/responses/compact", "g4f_server.protocols.responses.compact:compact_response"),
    ("POST", "/api/{provider}/responses", _RESPONSES + "create_response"),
    ("GET", "/v1/responses/{response_id}", _RESPONSES + "get_response"),
    ("DELETE", "/v1/responses/{response_id}", _RESPONSES + "delete_response"),
    ("GET", "/v1/responses/{response_id}/input_items", _RESPONSES + "list_input_items"),
    ("POST", "/v1/messages", _MESSAGES + "create_message"),
    ("POST", "/api/{provider}/messages", _MESSAGES + "create_message"),
    ("POST", "/v1/messages/count_tokens", _MESSAGES + "count_tokens"),
    ("POST", "/v1/completions", _COMPLETIONS + "create_completion"),
    ("POST", "/api/{provider}/completions", _COMPLETIONS + "create_completion"),
    ("POST", "/v1/embeddings", _EMBEDDINGS + "create_embeddings"),
    ("POST", "/api/{provider}/embeddings", _EMBEDDINGS + "create_embeddings"),
    # OpenAI's shape, or Anthropic's for a caller that sends anthropic-version.
    ("GET", "/v1/models", _ANTHROPIC_MODELS + "list_models"),
    ("GET", "/v1/models/{model:.+}", _ANTHROPIC_MODELS + "get_model"),
    ("GET", "/api/{provider}/models", _HERE + "models:provider_models"),
    ("GET", "/v1/providers", _HERE + "providers:list_providers"),
    ("GET", "/v1/providers/{provider}", _HERE + "providers:get_provider"),
    ("POST", "/v1/images/generations", _HERE + "images:generate_images"),
    ("POST", "/api/{provider}/images/generations", _HERE + "images:generate_images"),
    ("POST", "/v1/audio/speech", _HERE + "audio:create_speech"),
    ("POST", "/api/{provider}/audio/speech", _HERE + "audio:create_speech"),
    ("POST", "/v1/audio/transcriptions", _HERE + "audio:create_transcription"),
    ("POST", "/api/{provider}/audio/transcriptions", _HERE + "audio:create_transcription"),
    ("GET", "/media/{filename}", _HERE + "media_files:get_media"),
    ("POST", "/v1/upload_cookies", _HERE + "cookies:upload_cookies"),
    ("GET", "/v1/cookies", _HERE + "cookies:list_cookies"),
    ("DELETE", "/v1/cookies", _HERE + "cookies:delete_cookies"),
    ("DELETE", "/v1/cookies/{domain}", _HERE + "cookies:delete_cookies"),
    ("GET", "/metrics", _HERE + "metrics:metrics_page"),
    ("GET", "/openapi.json", _HERE + "docs:openapi_json"),
    ("GET", "/docs", _HERE + "docs:docs_page_route"),
    ("GET", "/docs/{version}/{path:.+}", _HERE + "docs:docs_asset"),
    ("GET", "/", _HERE + "gui:index"),
    ("GET", "/chat", _HERE + "gui:chat_redirect"),
    ("GET", "/chat/", _HERE + "gui:chat_page"),
    ("GET", "/gui/{version}/{path:.+}", _HERE + "gui:asset"),
)

# A base URL without /v1 (http://localhost:1337 + /chat/completions), as LiteLLM and
# several clients send it: these /v1 routes also answer without the prefix, with the
# same handler. Derived from ROUTES, so /embeddings appears with /v1/embeddings. Not
# every /v1 route: a path another rule names (demo mode's /v1/cookies) keeps one
# spelling. Left out of the OpenAPI document (one operation, one path).
UNVERSIONED_PATHS = frozenset(
    (
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/responses",
        "/responses/{response_id}",
        "/responses/{response_id}/input_items",
        "/models",
        "/models/{model:.+}",
        "/images/generations",
        "/audio/speech",
        "/audio/transcriptions",
    )
)


def unversioned(routes: tuple[tuple[str, str, str], ...]) -> tuple[tuple[str, str, str], ...]:
    """The aliases without /v1 of ``routes``: same method, same handler."""
    return tuple(
        (method, path.removeprefix("/v1"), target)
        for method, path, target in routes
        if path.startswith("/v1/") and path.removeprefix("/v1") in UNVERSIONED_PATHS
    )


UNVERSIONED = unversioned(ROUTES)


async def no_route(request: web.Request) -> web.StreamResponse:
    """Last in the table, for every path and method no route takes: 405 with the methods
    the path has, else 404 (the middleware words both). It exists so that such requests
    too have our ``Expect`` handler: aiohttp's own answered 500 to an ``Expect`` that is
    not UTF-8 on them."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical != _ANY_PATH:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


_ANY_PATH = "/{tail}"


def setup_routes(app: web.Application, edge: Edge) -> None:
    """Every route, its handler behind ``edge`` (the app's)."""
    app[OPENAPI_SPEC] = {}  # built by the first /openapi.json or /docs request
    router = app.router
    for method, path, target in ROUTES + UNVERSIONED:
        handler = edge.wrap(lazy_handler(target))
        if method == "GET":  # add_get also answers HEAD (media files, health checks)
            router.add_get(path, handler, expect_handler=expect_continue)
        else:
            router.add_route(method, path, handler, expect_handler=expect_continue)
    router.add_route("*", "/{tail:.*}", edge.wrap(no_route), expect_handler=expect_continue)
