"""A fast local stand-in for Pollinations' OpenAI-compatible endpoints.

Raw ``asyncio.Protocol`` HTTP/1.1 (keep-alive, no framework) so that it is never the
bottleneck of a benchmark. It serves:

- ``POST /openai`` and ``POST /v1/chat/completions``: a chat completion as JSON, or, when
  the body has ``"stream": true``, 20 SSE chunks (each written separately), a usage chunk
  and ``data: [DONE]``. A body naming the model ``openai-paced`` is streamed with
  ``--pace-ms`` between chunks (to check that a gateway passes chunk timing through).
- ``POST /v1/embeddings``: OpenAI's ``list`` of ``embedding`` objects, one per input
  (``EMBEDDING_SIZE`` floats each, or ``dimensions``), as JSON floats whatever was asked:
  the answers are made once per (inputs, dimensions) and kept;
- ``GET /text/models``, ``/image/models``, ``/audio/models``, ``/models``, ``/v1/models``:
  small JSON lists, so the Pollinations plugin (and the openai_compat plugin, with the
  ``vllm`` preset pointed at ``/v1``: chat model ``openai``, embedding model
  ``fake-embed``) starts at once.

Several processes can share the port (``--procs N``, SO_REUSEPORT).

    python bench/fake_upstream.py --port 8101 [--procs 1] [--pace-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import time

CHUNKS = 20
EMBEDDING_SIZE = 1536  # text-embedding-3-small's
PACED_MODEL = b"openai-paced"
TEXT = [f"tok{i} " for i in range(CHUNKS)]
USAGE = {"prompt_tokens": 9, "completion_tokens": CHUNKS, "total_tokens": 9 + CHUNKS}

_TEXT_MODELS = [
    {
        "name": "openai",
        "description": "fake",
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "tools": True,
    },
    {"name": "openai-paced", "input_modalities": ["text"], "output_modalities": ["text"]},
]
_IMAGE_MODELS = [{"name": "flux", "input_modalities": ["text"], "output_modalities": ["image"]}]
_AUDIO_MODELS = [{"name": "whisper", "input_modalities": ["audio"], "output_modalities": ["text"]}]


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(status: str, ctype: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + ctype
        + b"\r\nContent-Length: " + str(len(body)).encode()
        + b"\r\nConnection: keep-alive\r\n\r\n" + body
    )  # fmt: skip


def _chunk_dict(i: int, model: str) -> dict:
    last = i == CHUNKS - 1
    delta = {"role": "assistant", "content": TEXT[i]} if i == 0 else {"content": TEXT[i]}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "finish_reason": "stop" if last else None,
            }
        ],
    }


def _http_chunk(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _sse(obj: object) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def _stream_parts(model: str) -> list[bytes]:
    """The streamed answer, one HTTP chunk per SSE event (head first, terminator last)."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    )
    parts = [head + _http_chunk(_sse(_chunk_dict(0, model)))]
    parts += [_http_chunk(_sse(_chunk_dict(i, model))) for i in range(1, CHUNKS)]
    usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
             "model": model, "choices": [], "usage": USAGE}  # fmt: skip
    parts.append(_http_chunk(_sse(usage)) + _http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return parts


def _completion(model: str) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(TEXT)},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
    return _response("200 OK", b"application/json", _dumps(body))


STREAM = _stream_parts("openai")
STREAM_PACED = _stream_parts("openai-paced")
COMPLETION = _completion("openai")
_JSON = b"application/json"
GETS = {
    b"/text/models": _response("200 OK", _JSON, _dumps(_TEXT_MODELS)),
    b"/image/models": _response("200 OK", _JSON, _dumps(_IMAGE_MODELS)),
    b"/models": _response("200 OK", _JSON, _dumps(["flux"])),
    b"/audio/models": _response("200 OK", _JSON, _dumps(_AUDIO_MODELS)),
    b"/v1/models": _response(
        "200 OK",
        _JSON,
        _dumps(
            {
                "object": "list",
                "data": [
                    {"id": "openai", "object": "model"},
                    {"id": "fake-embed", "object": "model"},
                ],
            }
        ),
    ),
    b"/health": _response("200 OK", _JSON, b'{"status":"ok"}'),
}
NOT_FOUND = _response("404 Not Found", _JSON, b'{"error":{"message":"not found"}}')
CHAT_PATHS = (b"/openai", b"/v1/chat/completions")
_EMBEDDINGS: dict[tuple[int, int, str], bytes] = {}  # (inputs, size, model) -> the answer


def _embeddings(body: bytes) -> bytes:
    try:
        request = json.loads(body)
        given = request["input"]
        count = 1 if isinstance(given, str) or (given and isinstance(given[0], int)) else len(given)
        size = int(request.get("dimensions") or EMBEDDING_SIZE)
        model = str(request.get("model") or "fake-embed")
    except (ValueError, KeyError, TypeError, IndexError):
        return _response("400 Bad Request", _JSON, b'{"error":{"message":"bad request"}}')
    key = (count, size, model)
    answer = _EMBEDDINGS.get(key)
    if answer is None:
        vector = [round(((j * 7919) % 2000) / 1000 - 1, 6) for j in range(size)]
        data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
        usage = {"prompt_tokens": 8 * count, "total_tokens": 8 * count}
        body = _dumps({"object": "list", "data": data, "model": model, "usage": usage})
        if len(_EMBEDDINGS) > 64:  # a bench asks for a handful of shapes
            _EMBEDDINGS.clear()
        answer = _EMBEDDINGS[key] = _response("200 OK", _JSON, body)
    return answer


class FakeUpstream(asyncio.Protocol):
    __slots__ = ("buf", "pace", "transport")

    def __init__(self, pace: float) -> None:
        self.buf = b""
        self.pace = pace
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17 : stop if stop >= 0 else len(lower)])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[end + 4 : total]
            self.buf = self.buf[total:]
            self.handle(head, body)

    def handle(self, head: bytes, body: bytes) -> None:
        line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
        method, _, rest = line.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if method == b"POST" and path in CHAT_PATHS:
            compact = body.replace(b" ", b"")
            if b'"stream":true' not in compact:
                transport.write(COMPLETION)
            elif PACED_MODEL in body and self.pace > 0:
                asyncio.get_running_loop().create_task(self.paced(transport))
            else:
                for part in STREAM:
                    transport.write(part)
        elif method == b"POST" and path == b"/v1/embeddings":
            transport.write(_embeddings(body))
        elif method == b"GET" and path in GETS:
            transport.write(GETS[path])
        else:
            transport.write(NOT_FOUND)

    async def paced(self, transport: asyncio.Transport) -> None:
        for i, part in enumerate(STREAM_PACED):
            if i:
                await asyncio.sleep(self.pace)
            if transport.is_closing():
                return
            transport.write(part)


def _serve(host: str, port: int, pace: float) -> None:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    server = loop.run_until_complete(loop.create_server(lambda: FakeUpstream(pace), sock=sock))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    server.close()
    loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--procs", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--pace-ms", type=float, default=2.0, help="gap between paced chunks")
    args = parser.parse_args()
    pace = args.pace_ms / 1000
    if args.procs <= 1:
        _serve(args.host, args.port, pace)
        return
    ctx = multiprocessing.get_context("fork")
    children = [
        ctx.Process(target=_serve, args=(args.host, args.port, pace), daemon=True)
        for _ in range(args.procs)
    ]
    for child in children:
        child.start()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            if child.pid:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    deadline = time.monotonic() + 7 * 24 * 3600
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))


if __name__ == "__main__":
    main()
