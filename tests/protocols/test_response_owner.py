"""A stored response belongs to the key that made it, however the key is spelled in the
request's headers (issue 28 item 15): the OpenAI SDK sends ``Authorization: Bearer K``,
the anthropic SDK ``x-api-key: K``, curl users ``bearer K`` or ``g4f-api-key: K``."""

from __future__ import annotations

from typing import Any

import aiohttp

from g4f_server.controls.apikeys import key_hash
from tests.fake_providers import Scripted


async def test_a_stored_response_is_found_by_its_key_in_any_spelling(
    start_gateway: Any, tmp_path: Any
) -> None:
    keys = {"bob": {"sha256": key_hash("k-bob")}}
    base = await start_gateway(
        plugins=[Scripted()], data_dir=str(tmp_path), api_key="k-alice", keys=keys
    )
    body = {"model": "echo-1", "input": "hello", "store": True}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            base + "/v1/responses", json=body, headers={"Authorization": "Bearer k-alice"}
        ) as made,
    ):
        assert made.status == 200
        response_id = (await made.json())["id"]
    url = f"{base}/v1/responses/{response_id}"
    spellings = [
        {"Authorization": "Bearer k-alice"},
        {"Authorization": "bearer k-alice"},
        {"x-api-key": "k-alice"},
        {"g4f-api-key": "k-alice"},
    ]
    async with aiohttp.ClientSession() as s:
        for headers in spellings:
            async with s.get(url, headers=headers) as resp:
                assert resp.status == 200, headers
                assert (await resp.json())["id"] == response_id
        # Another key is another owner: the same 404 as an unknown id.
        async with s.get(url, headers={"x-api-key": "k-bob"}) as resp:
            assert resp.status == 404
        async with s.delete(url, headers={"x-api-key": "k-alice"}) as resp:
            assert resp.status == 200
        async with s.get(url, headers={"Authorization": "Bearer k-alice"}) as resp:
            assert resp.status == 404
