"""The bare aiohttp byte relay the gateway is measured against.

One shared ClientSession; every request is sent on to the upstream unchanged (method, path,
body, content type) and the answer comes back unchanged, streamed chunk by chunk. No
parsing, auth or logging: the floor of what an aiohttp gateway can cost.

    python bench/relay.py --port 8102 --upstream http://127.0.0.1:8101
"""

from __future__ import annotations

import argparse
import logging

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)
_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class _QuietResets(logging.Filter):
    """wrk drops its connections mid-answer when its time is up: not worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionResetError))


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    url = request.app[UPSTREAM] + request.path_qs
    session = request.app[SESSION]
    async with session.request(request.method, url, data=body, headers=headers) as upstream:
        response = web.StreamResponse(status=upstream.status)
        for name, value in upstream.headers.items():
            if name.lower() not in _HOP:
                response.headers[name] = value
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        await response.prepare(request)
        async for piece in upstream.content.iter_any():
            await response.write(piece)
        await response.write_eof()
        return response


async def _session(app: web.Application):  # type: ignore[no-untyped-def]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[SESSION] = session
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description="bare aiohttp byte relay")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--upstream", default="http://127.0.0.1:8101")
    args = parser.parse_args()
    logging.getLogger("aiohttp.server").addFilter(_QuietResets())
    app = web.Application()
    app[UPSTREAM] = args.upstream.rstrip("/")
    app.cleanup_ctx.append(_session)
    app.router.add_route("*", "/{tail:.*}", relay)
    try:
        import uvloop  # the gateway uses it when installed; so does its yardstick

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
