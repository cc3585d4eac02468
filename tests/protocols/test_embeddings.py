"""POST /v1/embeddings and /api/{provider}/embeddings through the whole app: OpenAI's
request and response shapes (texts, token ids, float and base64), usage, routing and
failover, the checks of a provider's vectors, the bounds on the input, and the errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from g4f_server import errors
from tests.fake_providers import Scripted
from tests.media_providers import Embedder, vector_for

URL = "/v1/embeddings"


async def post(client: Any, body: Any, path: str = URL) -> tuple[int, Any, Any]:
    resp = await client.post(path, json=body)
    return resp.status, await resp.json(), resp.headers


def float32(encoded: str) -> list[float]:
    """What openai-python does with a base64 embedding: little-endian float32s."""
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


async def test_texts_as_floats_in_order(make_client: Any) -> None:
    client = await make_client(Embedder())
    texts = ["the first text", "a second", "third"]
    status, body, headers = await post(client, {"input": texts, "model": "vec-1"})
    assert status == 200, body
    assert body["object"] == "list" and body["model"] == "vec-1"
    assert body["provider"] == "Embedder" and headers["X-G4F-Provider"] == "Embedder"
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(item["object"] == "embedding" for item in body["data"])
    assert [item["embedding"] for item in body["data"]] == [vector_for(t, 4) for t in texts]
    # The provider's own count (words), not an estimate.
    assert body["usage"] == {"prompt_tokens": 6, "total_tokens": 6}


async def test_one_string_is_one_input(make_client: Any) -> None:
    provider = Embedder()
    client = await make_client(provider)
    status, body, _ = await post(client, {"input": "just this", "model": "vec-1"})
    assert status == 200, body
    assert [item["embedding"] for item in body["data"]] == [vector_for("just this", 4)]
    assert provider.seen[-1].inputs == ["just this"] and not provider.seen[-1].tokens


async def test_base64_is_little_endian_float32(make_client: Any) -> None:
    client = await make_client(Embedder(size=6))
    status, body, _ = await post(
        client, {"input": ["a", "b"], "model": "vec-1", "encoding_format": "base64"}
    )
    assert status == 200, body
    for item, text in zip(body["data"], ["a", "b"], strict=True):
        assert isinstance(item["embedding"], str)
        assert len(base64.b64decode(item["embedding"])) == 6 * 4
        assert float32(item["embedding"]) == pytest.approx(vector_for(text, 6), rel=1e-6)


async def test_usage_is_estimated_when_the_provider_gives_none(make_client: Any) -> None:
    client = await make_client(Embedder(usage=False))
    status, body, _ = await post(client, {"input": ["12345678", "abc"], "model": "vec-1"})
    assert status == 200, body
    # UTF-8 bytes / 4, rounded up, per input (as chat text is estimated).
    assert body["usage"] == {"prompt_tokens": 2 + 1, "total_tokens": 3, "estimated": True}


async def test_token_ids_only_reach_models_that_read_them(make_client: Any) -> None:
    texts_only = await make_client(Embedder())
    status, body, _ = await post(texts_only, {"input": [[1, 2, 3]], "model": "vec-1"})
    assert status == 400, body
    assert "token_input" in body["error"]["message"] and body["error"]["param"] == "model"

    provider = Embedder(tokens=True, usage=False)
    client = await make_client(provider)
    status, body, _ = await post(client, {"input": [[1, 2, 3], [4, 5]], "model": "vec-1"})
    assert status == 200, body
    assert [i["embedding"] for i in body["data"]] == [vector_for(t, 4) for t in ([1, 2, 3], [4, 5])]
    assert provider.seen[-1].tokens and provider.seen[-1].inputs == [[1, 2, 3], [4, 5]]
    # Token ids count themselves: no estimate.
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    status, body, _ = await post(client, {"input": [7, 8, 9], "model": "vec-1"})
    assert status == 200 and len(body["data"]) == 1, body
    assert provider.seen[-1].inputs == [[7, 8, 9]]


async def test_dimensions(make_client: Any) -> None:
    provider = Embedder()
    client = await make_client(provider)
    status, body, _ = await post(client, {"input": "x", "model": "vec-1", "dimensions": 9})
    assert status == 200, body
    assert len(body["data"][0]["embedding"]) == 9 and provider.seen[-1].dimensions == 9
    # A model that cannot: the provider's 400, and no other provider is tried.
    status, body, _ = await post(client, {"input": "x", "model": "vec-fixed", "dimensions": 9})
    assert status == 400 and "dimensions" in body["error"]["message"], body


async def test_a_provider_that_ignores_dimensions_is_caught(make_client: Any) -> None:
    client = await make_client(Embedder(broken="deaf"))
    status, body, _ = await post(client, {"input": "x", "model": "vec-1", "dimensions": 3})
    assert status == 502, body
    assert "returned 4 dimensions where 3 were asked for" in body["error"]["message"]
    deaf, fine = Embedder(name="Deaf", broken="deaf", priority=1), Embedder(name="Fine")
    client = await make_client(deaf, fine)
    status, body, _ = await post(client, {"input": "x", "model": "vec-1", "dimensions": 3})
    assert status == 200 and body["provider"] == "Fine", body
    assert len(body["data"][0]["embedding"]) == 3


@pytest.mark.parametrize("broken", ["count", "ragged", "nan", "empty", "wrong"])
async def test_a_broken_answer_is_never_a_success(make_client: Any, broken: str) -> None:
    client = await make_client(Embedder(broken=broken))
    status, body, _ = await post(client, {"input": ["a", "b"], "model": "vec-1"})
    assert status == 502, body
    assert body["error"]["code"] == "provider_error" and "Embedder" in body["error"]["message"]


async def test_failover_to_the_next_provider(make_client: Any) -> None:
    first = Embedder(name="First", priority=1, broken="count")
    second = Embedder(name="Second", priority=2)
    client = await make_client(first, second)
    status, body, headers = await post(client, {"input": ["a", "b"], "model": "vec-1"})
    assert status == 200, body
    assert body["provider"] == "Second" and headers["X-G4F-Attempts"] == "2"
    assert len(first.seen) == 1
    # A rate-limited provider is failed over too; a 400 from a provider is not.
    first.broken, first.fail = None, errors.ProviderRateLimitError("slow down", retry_after=1)
    status, body, _ = await post(client, {"input": "a", "model": "vec-1"})
    assert status == 200 and body["provider"] == "Second", body
    # (A fresh pair: a provider that failed a moment ago is tried last for a minute.)
    refusing = Embedder(name="First", priority=1, fail=errors.InvalidRequestError("refused"))
    client = await make_client(refusing, Embedder(name="Second", priority=2))
    status, body, _ = await post(client, {"input": "a", "model": "vec-1"})
    assert status == 400 and body["error"]["message"] == "refused"


async def test_routing_like_chat(make_client: Any) -> None:
    """OpenAI's names reach the installed embedding models (the built-in table); the
    operator's table can point a name at one model; Provider:model and /api/{provider}."""
    one, two = Embedder(name="One", priority=1), Embedder(name="Two", priority=2)
    client = await make_client(one, two)
    for name in ("text-embedding-3-small", "text-embedding-ada-002", ""):
        status, body, _ = await post(client, {"input": "x", "model": name})
        assert status == 200 and body["provider"] == "One" and body["model"] == "vec-1", body
    status, body, _ = await post(client, {"input": "x", "model": "Two:vec-fixed"})
    assert body["provider"] == "Two" and body["model"] == "vec-fixed", body
    status, body, _ = await post(client, {"input": "x"}, "/api/Two/embeddings")
    assert status == 200 and body["provider"] == "Two", body

    table = {"text-embedding-3-large": ["Two:vec-fixed"]}
    client = await make_client(Embedder(name="One"), Embedder(name="Two"), models=table)
    status, body, _ = await post(client, {"input": "x", "model": "text-embedding-3-large"})
    assert status == 200 and body["provider"] == "Two" and body["model"] == "vec-fixed", body


async def test_no_provider_that_embeds(make_client: Any) -> None:
    client = await make_client(Scripted())
    for model in ("text-embedding-3-small", "echo-1", ""):
        status, body, _ = await post(client, {"input": "x", "model": model})
        assert status == 404, body
        assert body["error"]["code"] == "no_embeddings_provider"
        assert "No installed provider serves embeddings" in body["error"]["message"]
    status, body, _ = await post(client, {"input": "x"}, "/api/Echo/embeddings")
    assert status == 400 and "does not support embeddings" in body["error"]["message"], body
    client = await make_client(Scripted(), Embedder())
    status, body, _ = await post(client, {"input": "x"}, "/api/Echo/embeddings")
    assert status == 400 and "does not support embeddings" in body["error"]["message"], body
    status, body, _ = await post(client, {"input": "x", "model": "echo-1"})
    assert status == 404 and body["error"]["code"] == "model_not_found", body
    status, body, _ = await post(client, {"input": "x"}, "/api/Nobody/embeddings")
    assert status == 404 and body["error"]["code"] == "provider_not_found", body


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "Field required"),
        ({"input": ""}, "empty string"),
        ({"input": []}, "not empty"),
        ({"input": ["a", ""]}, "input 1 must not be an empty string"),
        ({"input": [[1], []]}, "input 1 must be a non-empty list of token ids"),
        ({"input": ["a", 1]}, "not a mix"),
        ({"input": [1, -2]}, "token ids must be integers"),
        ({"input": [True]}, "input 0 is not a list of token ids"),
        ({"input": [1.5, 2.5]}, "is not a list of token ids"),
        ({"input": {"text": "a"}}, "a list of strings"),
        ({"input": "a", "encoding_format": "hex"}, "'float' or 'base64'"),
        ({"input": "a", "dimensions": 0}, "greater than or equal to 1"),
        ({"input": "a", "model": 5}, "valid string"),
    ],
)
async def test_bad_input_is_a_400_naming_it(make_client: Any, body: Any, words: str) -> None:
    provider = Embedder()
    client = await make_client(provider)
    status, answer, _ = await post(client, body)
    assert status == 400, answer
    error = answer["error"]
    assert error["type"] == "invalid_request_error" and words in error["message"], error
    assert error["param"] in ("input", "encoding_format", "dimensions", "model")
    assert not provider.seen


async def test_bounds_on_the_input(make_client: Any) -> None:
    provider = Embedder()
    client = await make_client(provider, max_embedding_inputs=3, max_json_items=1000)
    status, body, _ = await post(client, {"input": ["a", "b", "c"]})
    assert status == 200, body
    status, body, _ = await post(client, {"input": ["a", "b", "c", "d"]})
    assert status == 400 and "max_embedding_inputs" in body["error"]["message"], body
    assert body["error"]["param"] == "input"
    # Token ids are values of the body: max_json_items bounds them before any parsing
    # into a request (a token-id list counts as one input).
    status, body, _ = await post(client, {"input": list(range(2000))})
    assert status == 400 and body["error"]["code"] == "json_too_large", body
    # And the body itself stays within max_body_size.
    small = await make_client(Embedder(), max_body_size=2048)
    status, body, _ = await post(small, {"input": ["x" * 1000] * 3})
    assert status == 413 and "max_body_size" in body["error"]["message"], body
    assert len(provider.seen) == 1


async def test_not_json(make_client: Any) -> None:
    client = await make_client(Embedder())
    resp = await client.post(URL, data=b"input=hello")
    assert resp.status == 400
    assert "not valid JSON" in (await resp.json())["error"]["message"]


async def test_in_the_openapi_document(make_client: Any) -> None:
    client = await make_client(Embedder())
    spec = await (await client.get("/openapi.json")).json()
    for path in ("/v1/embeddings", "/api/{provider}/embeddings"):
        operation = spec["paths"][path]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/EmbeddingRequest")
    schema = spec["components"]["schemas"]["EmbeddingRequest"]
    assert schema["required"] == ["input"]
    assert set(schema["properties"]) >= {"input", "model", "encoding_format", "dimensions"}
