"""/openapi.json is a valid OpenAPI document (issue 17: duplicate operation ids)."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from tests.fake_providers import Scripted
from tests.media_providers import Memo


async def test_openapi_document_is_valid(make_client: Any) -> None:
    client = await make_client(Scripted(), Memo())
    spec = await (await client.get("/openapi.json")).json()
    validate(spec)  # raises on any problem (duplicate operationId, bad $ref, ...)
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
