"""The edge's one middleware: the connection's timers, CORS, request id, API key check,
the in-flight caps, error mapping (with the retry hints of ``errors.retry_hints``) and the
access line, in that order. The operator's controls add theirs around it (metrics) and
inside it (limits).

One middleware instead of seven keeps the per-request cost down (every middleware is an
extra coroutine frame on the hot path, ~4 k instructions): the parts are functions of
their own modules (``connections``, ``cors``, ``admission``), called from here.
"""

from __future__ import annotations

import asyncio
import random
import re
import time

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG, KEY_NAME, REQUEST_ID, SERVED_BY
from g4f_server.config import AppConfig
from g4f_server.controls import demo
from g4f_server.controls.apikeys import KEYRING, OPEN_PATHS, OPEN_PREFIXES
from g4f_server.logs import access_line, bind_request_id, get_logger
from g4f_server.pipeline.dispatch import attempted
from g4f_server.providers.router import Route
from g4f_server.web import cors
from g4f_server.web.admission import InFlight
from g4f_server.web.connections import CONNECTIONS
from g4f_server.web.handlers import direct, error_body
from g4f_server.web.jsonio import error_response, json_response

log = get_logger("g4f_server.middleware")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _http_error(exc: web.HTTPException, request: web.Request) -> errors.G4FError:
    if isinstance(exc, web.HTTPNotFound):
        return errors.NotFoundError(
            f"Unknown route: {request.method} {request.path}", code="unknown_route"
        )
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return errors.MethodNotAllowedError(
            f"Method {request.method} is not allowed on {request.path}",
            headers={"Allow": ", ".join(sorted(exc.allowed_methods))},
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return errors.PayloadTooLargeError(
            f"Request body too large (limit {request.app[CONFIG].max_body_size} bytes)"
        )
    error = errors.G4FError(exc.reason or "HTTP error", code=f"http_{exc.status}")
    error.status = exc.status  # type: ignore[misc]
    error.type = "invalid_request_error" if exc.status < 500 else "server_error"  # type: ignore[misc]
    return error


def _error_response(error: errors.G4FError, request: web.Request) -> web.Response:
    """OpenAI's error shape, or the one the route's handler declared (``errors_as``,
    e.g. Anthropic's on /v1/messages); the same status either way."""
    body = error_body(request.match_info.handler)
    if body is not None:
        return json_response(body(error), status=error.status, headers=error.headers)
    return error_response(error)


def edge_middleware(config: AppConfig) -> web.Middleware:
    """The app's middleware (see the module's docstring); ``config`` sizes its caps."""
    in_flight = InFlight(config)

    @web.middleware
    async def edge(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        app = request.app
        # Behind a runner without the connection guard (the tests' own): no timers.
        connections = app.get(CONNECTIONS)
        conn = connections.started(request.protocol) if connections is not None else None
        try:
            first = cors.answer_first(request)  # before the key check (preflights)
            if first is not None:
                return first
            started = time.perf_counter()
            request_id = request.headers.get("X-Request-Id", "")  # the client's, if usable
            if not request_id or not _CLIENT_ID.match(request_id):
                # Ids need to be unique, not secret: no getrandom syscall per request.
                request_id = f"{random.getrandbits(128):032x}"
            request[REQUEST_ID] = request_id
            bind_request_id(request_id)
            config, keyring = app[CONFIG], app.get(KEYRING)
            tried: list[Route] = []
            attempted.set(tried)
            path = request.path
            try:
                expect = request.headers.get("Expect")
                if expect is not None and expect.lower() != "100-continue":
                    raise errors.InvalidRequestError(
                        "Unsupported Expect header: only '100-continue' is understood",
                        code="unsupported_expectation",
                    )  # the value is not quoted: it may not even be text (issue 28)
                if (
                    keyring is not None
                    and path not in OPEN_PATHS
                    and not path.startswith(OPEN_PREFIXES)
                ):
                    request[KEY_NAME] = keyring.identify(request)
                if config.demo:
                    demo.check_request(request)
                cost = in_flight.admit(request)  # its 503 is answered as any error below
                try:
                    response = await direct(handler)(request)
                finally:
                    in_flight.release(cost)
            except errors.G4FError as exc:
                response = _error_response(exc, request)
            except ConnectionResetError:
                # The client hung up mid-answer: nothing to send, nothing broken. 499 as nginx does.
                response = web.Response(status=499)
            except asyncio.CancelledError:
                # aiohttp cancels the handler when the client hangs up: logged as 499 too.
                if config.access_log:
                    _access(request, 499, tried, started)
                raise
            except web.HTTPException as exc:
                if exc.status < 400:  # redirects stay redirects
                    raise
                response = _error_response(_http_error(exc, request), request)
            except Exception:
                # A bug. The client gets the request id to quote, never the traceback.
                log.exception("unhandled_error", method=request.method, path=request.path)
                response = _error_response(
                    errors.InternalError(f"Internal server error (request id {request_id})"),
                    request,
                )
            if not response.prepared:
                response.headers["X-Request-Id"] = request_id
                if response.status >= 400:  # raised or returned, in any protocol's shape
                    response.headers.update(errors.retry_hints(response.status, response.headers))
            if config.access_log:
                _access(request, response.status, tried, started)
            return response
        finally:
            if conn is not None:
                connections.finished(conn)  # type: ignore[union-attr]

    return edge


def _access(request: web.Request, status: int, tried: list[Route], started: float) -> None:
    """The access line: who served the request, else every provider tried (``A,B``)."""
    served = request.get(SERVED_BY)
    if served is not None:
        provider, model, attempts = served
    elif tried:
        provider = ",".join(route.entry.name for route in tried)
        model = ",".join(dict.fromkeys(route.model for route in tried))
        attempts = len(tried)
    else:
        provider = model = attempts = None
    access_line(
        request[REQUEST_ID],
        request.method,
        request.path,
        status,
        provider,
        model,
        attempts,
        round((time.perf_counter() - started) * 1000, 2),
        request.get(KEY_NAME),
    )
