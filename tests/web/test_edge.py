"""The edge wraps the route table's handlers (no aiohttp middleware): what must still pass
through it, routes an embedding program adds and request targets no route can match."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from g4f_server.app import create_app
from g4f_server.config import AppConfig
from tests.fake_providers import Scripted

KEY = "s3cret-key"


async def test_a_route_added_after_the_table_is_behind_the_edge(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    app = create_app(
        AppConfig(api_key=KEY, data_dir=tmp_path), plugins=[Scripted()], load_entrypoints=False
    )

    async def mine(request: web.Request) -> web.Response:
        return web.json_response({"mine": True})

    app.router.add_get("/mine", mine)
    client = await aiohttp_client(app)
    refused = await client.get("/mine")
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "invalid_api_key"
    auth = {"Authorization": f"Bearer {KEY}"}
    served = await client.get("/mine", headers=auth)
    assert served.status == 200 and await served.json() == {"mine": True}
    assert served.headers["X-Request-Id"]
    # The table's own routes pass the edge once, not twice (one request id, one check).
    models = await client.get("/v1/models", headers={**auth, "X-Request-Id": "req-9"})
    assert models.status == 200 and models.headers.getall("X-Request-Id") == ["req-9"]


@pytest.mark.parametrize(
    ("target", "path"), [("OPTIONS * HTTP/1.1", "*"), ("GET http://localhost HTTP/1.1", "")]
)
async def test_a_target_no_route_matches_is_our_json_404(
    aiohttp_client: Any, tmp_path: Any, target: str, path: str
) -> None:
    # Sent raw: no client library sends these forms to an API, but anyone can.
    app = create_app(AppConfig(data_dir=tmp_path), plugins=[Scripted()], load_entrypoints=False)
    client = await aiohttp_client(app)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    with capture_logs() as logs:
        writer.write(f"{target}\r\nHost: localhost\r\nOrigin: http://localhost\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
    body = await reader.readexactly(int(headers["Content-Length"]))
    writer.close()
    assert head.startswith(b"HTTP/1.1 404 ")
    assert headers["Content-Type"] == "application/json"
    assert headers["x-should-retry"] == "false"
    assert headers["Access-Control-Allow-Origin"] == "http://localhost"
    assert orjson.loads(body)["error"] == {
        "message": f"Unknown route: {target.split()[0]} {path}",
        "type": "invalid_request_error",
        "code": "unknown_route",
        "param": None,
    }
    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert line["path"] == path and line["status"] == 404
    assert line["request_id"] == headers["X-Request-Id"]


async def test_an_answer_reaches_the_client_before_the_edge_returns(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    # An outer middleware (where the controls' metrics run) that holds the request until
    # the client has its answer: only an answer written by the edge itself gets there.
    from g4f_server.web import cors
    from g4f_server.web.middleware import Edge

    received = asyncio.Event()

    @web.middleware
    async def after_work(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        await asyncio.wait_for(received.wait(), 2)  # a late answer: TimeoutError, a 500
        return response

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app[cors.CORS] = cors.CorsPolicy.build(None, has_key=False, bind="0.0.0.0")
    edge = Edge(AppConfig(data_dir=tmp_path), outer=[after_work])
    edge.attach(app)
    app.router.add_get("/answer", edge.wrap(answer))
    client = await aiohttp_client(app)
    response = await client.get("/answer")
    assert response.status == 200 and await response.json() == {"ok": True}
    assert response.headers["X-Request-Id"]
    received.set()
    again = await client.get("/answer")  # the same keep-alive connection, still in step
    received.set()
    assert again.status == 200 and await again.json() == {"ok": True}


async def test_an_embedding_programs_middleware_still_changes_the_answer(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    # Its middleware runs after the edge returns: the edge must leave the writing to
    # aiohttp then, or the header would be set on an answer already sent.
    app = create_app(AppConfig(data_dir=tmp_path), plugins=[Scripted()], load_entrypoints=False)

    @web.middleware
    async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        response.headers["X-Embedder"] = "stamped"
        return response

    app.middlewares.append(stamp)
    client = await aiohttp_client(app)
    models = await client.get("/v1/models")
    assert models.status == 200 and models.headers["X-Embedder"] == "stamped"
    missing = await client.get("/v1/nothing-here")
    assert missing.status == 404 and missing.headers["X-Embedder"] == "stamped"
