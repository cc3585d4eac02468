"""The edge: the connection's timers, CORS, request id, API key check, the in-flight caps,
error mapping (with the retry hints of ``errors.retry_hints``) and the access line, in
that order. The operator's controls are called first and last (metrics: ``wiring.ON_START``
and ``ON_DONE``) and add their middlewares inside it (limits).

The edge is not an aiohttp middleware: the route table wraps each route's handler in it
(``Edge.wrap``). With any middleware installed aiohttp runs every request through one more
coroutine of its own (``_fix_request_current_app``) and a cached chain looked up by
``match_info.apps``, and a lazy handler was one more frame again; wrapped at registration,
a request goes from aiohttp straight to the edge and from the edge straight to the
handler. The route table ends with a catch-all route (``routes.no_route``), so every
request, a 404 or 405 too, passes the edge. The parts are functions of their own modules
(``connections``, ``cors``, ``admission``), called from here.
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
import time
from collections.abc import Callable, Iterable

from aiohttp import hdrs, web
from multidict import istr

from g4f_server import errors
from g4f_server.appkeys import KEY_NAME, REQUEST_ID, SERVED_BY
from g4f_server.config import AppConfig
from g4f_server.controls import demo, wiring
from g4f_server.controls.apikeys import KEYRING, OPEN_PATHS, OPEN_PREFIXES, KeyRing
from g4f_server.logs import access_line, bind_request_id, get_logger
from g4f_server.pipeline.dispatch import attempted
from g4f_server.providers.router import Route
from g4f_server.web import cors
from g4f_server.web.admission import InFlight
from g4f_server.web.connections import CONNECTIONS, Connections
from g4f_server.web.handlers import Handler, error_body, real_handler
from g4f_server.web.jsonio import error_response, json_response

log = get_logger("g4f_server.middleware")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_X_REQUEST_ID = istr("X-Request-Id")  # an istr: a header lookup without case-folding


def _http_error(exc: web.HTTPException, request: web.Request, config: AppConfig) -> errors.G4FError:
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
            f"Request body too large (limit {config.max_body_size} bytes)"
        )
    error = errors.G4FError(exc.reason or "HTTP error", code=f"http_{exc.status}")
    error.status = exc.status  # type: ignore[misc]
    error.type = "invalid_request_error" if exc.status < 500 else "server_error"  # type: ignore[misc]
    return error


class _Route:
    """One route's handler as the edge calls it: imported by the route's first request,
    then called straight, behind the controls' middlewares that run inside the edge."""

    __slots__ = ("call", "handler", "inner")

    def __init__(self, handler: Handler, inner: tuple[web.Middleware, ...]) -> None:
        self.handler = handler  # a lazy handler, or a function (the catch-all route)
        self.inner = inner
        self.call: Handler | None = None

    def resolve(self) -> Handler:
        call = real_handler(self.handler)
        for middleware in reversed(self.inner):
            call = functools.partial(middleware, handler=call)
        self.call = call
        return call

    def error_response(self, error: errors.G4FError) -> web.Response:
        """OpenAI's error shape, or the one the route's handler declared (``errors_as``,
        e.g. Anthropic's on /v1/messages); the same status either way."""
        body = error_body(self.handler)
        if body is not None:
            return json_response(body(error), status=error.status, headers=error.headers)
        return error_response(error)


class Edge:
    """The edge of one app, wrapped around each route's handler by the route table
    (``wrap``). ``outer`` are the controls' middlewares that run around it (metrics: it
    times everything), ``inner`` those that run inside it (limits: after the key check);
    both are aiohttp-style ``(request, handler)`` middlewares, chained as aiohttp would.
    An outer middleware may read the answer but not change it: the edge may have sent it
    (``decide_sends``)."""

    def __init__(
        self,
        config: AppConfig,
        *,
        outer: Iterable[web.Middleware] = (),
        inner: Iterable[web.Middleware] = (),
    ) -> None:
        self.config = config
        self.outer, self.inner = tuple(outer), tuple(inner)
        self.in_flight = InFlight(config)
        self.keyring: KeyRing | None = None
        self.cors: cors.CorsPolicy | None = None
        self.controls_prepare: Callable[[web.Request, web.StreamResponse], None] | None = None
        self.controls_start: Callable[[web.Request], web.StreamResponse | None] | None = None
        self.controls_done: Callable[[web.Request, web.StreamResponse | None], None] | None = None
        self.controls_admit: Callable[[web.Request, str | None], None] | None = None
        # The runner's connection guard (admission.serve), set before the app starts;
        # None behind another runner (the tests' own): no timers.
        self.connections: Connections | None = None
        self._foreign: dict[Handler, Handler] = {}  # routes added outside the table
        self.sends: bool | None = None  # decide_sends, on the first request

    def decide_sends(self, request: web.Request) -> bool:
        """Whether the edge writes a ready answer itself instead of leaving it to aiohttp
        after the handler returns. Written at once, it reaches the client before the access
        line and the metrics: at one connection the client's next request overlaps that
        work (json/c1 +7-10% req/s, no change at 32). Only when nothing but our own layers
        wraps the edge: an embedding program's aiohttp middleware, or a parent app's, may
        still change the answer after the edge returns (the controls' outer middlewares
        only read it). Known once the app is frozen, so decided on the first request."""
        apps = request.match_info.apps
        self.sends = len(apps) == 1 and all(
            middleware == self._foreign_routes for middleware in apps[0].middlewares
        )
        return self.sends

    def attach(self, app: web.Application) -> None:
        """Read what the edge needs of ``app`` once, not per request: the key ring and the
        CORS policy now, the connection guard when the app starts."""
        self.keyring = app.get(KEYRING)
        self.cors = app[cors.CORS]
        self.controls_prepare = app.get(wiring.ON_PREPARE)
        self.controls_start = app.get(wiring.ON_START)
        self.controls_done = app.get(wiring.ON_DONE)
        self.controls_admit = app.get(wiring.ON_ADMIT)
        app.on_response_prepare.append(self._prepare)
        app.on_startup.append(self._started)

    async def _prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare, for every answer (streamed ones too): CORS's headers; and
        our 404 for a request target no route can match (``OPTIONS *``, an absolute URL
        without a path: the catch-all route only matches paths), which aiohttp answers
        in plain text before any handler (our handlers' HTTPExceptions never get here:
        the edge answers them). The controls' part first (their headers before CORS's)."""
        if (controls_prepare := self.controls_prepare) is not None:
            controls_prepare(request, response)
        if type(response) is web.HTTPNotFound:
            self._unrouted(request, response)
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None:
            cors.add_headers(self.cors, origin, response)  # type: ignore[arg-type]

    def _unrouted(self, request: web.Request, response: web.Response) -> None:
        request_id = _request_id(request)
        answer = error_response(_http_error(web.HTTPNotFound(), request, self.config))
        response.body = answer.body
        response.headers.update(answer.headers)  # its Content-Type
        response.headers[hdrs.CONTENT_LENGTH] = str(len(answer.body))  # type: ignore[arg-type]
        response.headers["X-Request-Id"] = request_id
        response.headers.update(errors.retry_hints(404, response.headers))
        if self.config.access_log:
            access_line(request_id, request.method, request.path, 404, None, None, None, 0.0)

    async def _started(self, app: web.Application) -> None:
        self.connections = app.get(CONNECTIONS)
        # Routes an embedding program added after the table (or a sub-app's) would bypass
        # the edge (no key check): then, and only then, the edge also runs as an aiohttp
        # middleware, for them. (Before the app freezes: its middlewares are still open.)
        if any(not hasattr(route.handler, "edge") for route in app.router.routes()):
            app.middlewares.append(self._foreign_routes)

    @web.middleware
    async def _foreign_routes(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if hasattr(handler, "edge"):  # the table's own: behind the edge already
            return await handler(request)
        wrapped = self._foreign.get(handler)
        if wrapped is None:
            wrapped = self.wrap(handler)
            if request.match_info.http_exception is None:  # aiohttp's 404/405: one-off
                self._foreign[handler] = wrapped
        return await wrapped(request)

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` (a lazy handler or a function) behind the edge and the controls."""
        route = _Route(handler, self.inner)
        wrapped = _edge(self, route)
        for middleware in reversed(self.outer):
            wrapped = functools.partial(middleware, handler=wrapped)
        # What the OpenAPI builder reads (handlers.real_handler): the function served.
        wrapped.resolve = functools.partial(real_handler, handler)  # type: ignore[union-attr]
        wrapped.edge = self  # type: ignore[union-attr]  # behind this edge
        return wrapped


def _edge(edge: Edge, route: _Route) -> Handler:
    """One route's edge (see the module's docstring)."""
    config, in_flight, policy = edge.config, edge.in_flight, edge.cors
    assert policy is not None, "Edge.attach(app) comes before Edge.wrap"

    async def handle(request: web.Request) -> web.StreamResponse:
        # The controls first (the metrics' clock; the public /metrics, answered as it is).
        if (start := edge.controls_start) is not None and (ready := start(request)) is not None:
            return ready
        connections = edge.connections
        conn = connections.started(request.protocol) if connections is not None else None
        answered: web.StreamResponse | None = None  # for the controls' on_done
        try:
            headers = request.headers
            # Before the key check (preflights); nothing to check without the Host guard
            # or an Origin (API clients send none).
            if policy.guard_host or hdrs.ORIGIN in headers:
                first = cors.answer_first(request, policy)
                if first is not None:
                    answered = first
                    return first
            started = time.perf_counter()
            request_id = headers.get(_X_REQUEST_ID, "")  # the client's, if usable
            if not request_id or not _CLIENT_ID.match(request_id):
                request_id = _new_id()
            request[REQUEST_ID] = request_id
            bind_request_id(request_id)
            keyring = edge.keyring
            tried: list[Route] = []
            attempted.set(tried)
            path = request.path
            key_name: str | None = None
            try:
                expect = headers.get(hdrs.EXPECT)
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
                    key_name = request[KEY_NAME] = keyring.identify(request)
                if config.demo:
                    demo.check_request(request)
                cost = in_flight.admit(request)  # its 503 is answered as any error below
                try:
                    if (admit := edge.controls_admit) is not None:  # the limits (controls/)
                        admit(request, key_name)
                    response = await (route.call or route.resolve())(request)
                finally:
                    in_flight.release(cost)
            except errors.G4FError as exc:
                response = route.error_response(exc)
            except ConnectionResetError:
                # The client hung up mid-answer: nothing to send, nothing broken. 499 as nginx does.
                response = web.Response(status=499)
            except asyncio.CancelledError:
                # aiohttp cancels the handler when the client hangs up: logged as 499 too.
                if config.access_log:
                    _access(request, request_id, key_name, 499, tried, started)
                raise
            except web.HTTPException as exc:
                if exc.status < 400:  # redirects stay redirects
                    raise
                response = route.error_response(_http_error(exc, request, config))
            except Exception:
                # A bug. The client gets the request id to quote, never the traceback.
                log.exception("unhandled_error", method=request.method, path=request.path)
                response = route.error_response(
                    errors.InternalError(f"Internal server error (request id {request_id})")
                )
            status = response.status
            if not response.prepared:
                response.headers[_X_REQUEST_ID] = request_id
                if status >= 400:  # raised or returned, in any protocol's shape
                    response.headers.update(errors.retry_hints(status, response.headers))
                sends = edge.sends
                if sends is None:
                    sends = edge.decide_sends(request)
                if sends:  # the answer goes out now; the access line and metrics after it
                    try:
                        await response.prepare(request)
                        await response.write_eof()
                    except ConnectionError:  # aiohttp's own write_eof drops the connection
                        status = 499
            if config.access_log:
                _access(request, request_id, key_name, status, tried, started)
            answered = response
            return response
        finally:
            if conn is not None:
                connections.finished(conn)  # type: ignore[union-attr]
            if (done := edge.controls_done) is not None:
                done(request, answered)

    handle.__name__ = handle.__qualname__ = getattr(route.handler, "__name__", "handle")
    return handle


def _new_id() -> str:
    # Ids need to be unique, not secret: no getrandom syscall per request.
    return f"{random.getrandbits(128):032x}"


def _request_id(request: web.Request) -> str:
    """The client's ``X-Request-Id`` if usable, else a new one."""
    request_id = request.headers.get("X-Request-Id", "")
    return request_id if request_id and _CLIENT_ID.match(request_id) else _new_id()


def _access(
    request: web.Request,
    request_id: str,
    key_name: str | None,
    status: int,
    tried: list[Route],
    started: float,
) -> None:
    """The access line: who served the request, else every provider tried (``A,B``)."""
    try:  # not .get(): Mapping.get is two Python frames on aiohttp's request
        served = request[SERVED_BY]
    except KeyError:
        served = None
    if served is not None:
        provider, model, attempts = served
    elif tried:
        provider = ",".join(route.entry.name for route in tried)
        model = ",".join(dict.fromkeys(route.model for route in tried))
        attempts = len(tried)
    else:
        provider = model = attempts = None
    access_line(
        request_id,
        request.method,
        request.path,
        status,
        provider,
        model,
        attempts,
        (time.perf_counter() - started) * 1000,  # access_line keeps it to the hundredth
        key_name,
    )
