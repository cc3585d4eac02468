"""POST /v1/embeddings and /api/{provider}/embeddings."""

from __future__ import annotations

from aiohttp import web

from g4f_server.pipeline.embeddings import embed
from g4f_server.protocols.embeddings.render import embeddings_body
from g4f_server.requests import EmbeddingRequest
from g4f_server.web.body import read_model
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response


@request_body(EmbeddingRequest)
async def create_embeddings(request: web.Request) -> web.Response:
    """Create embeddings (OpenAI-compatible; `float` or `base64` vectors)."""
    body = await read_model(request, EmbeddingRequest)
    embedded = await embed(request, body)
    return json_response(embeddings_body(embedded, body.encoding_format), headers=embedded.headers)
