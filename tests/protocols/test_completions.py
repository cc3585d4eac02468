"""Legacy completions through the official openai SDK against a running gateway, with
the kernel's test providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from g4f_server import errors
from tests.fake_providers import Ponderer, Scripted


@pytest.fixture
async def sdk(start_gateway: Any, tmp_path: Any) -> AsyncIterator[Any]:
    made: list[Any] = []

    async def make(*plugins: object, **config: Any) -> openai.AsyncOpenAI:
        base = await start_gateway(plugins=list(plugins), data_dir=str(tmp_path), **config)
        made.append(openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", max_retries=0))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def test_completion(sdk: Any) -> None:
    echo = Scripted(usage=True)
    client = await sdk(echo)
    reply = await client.completions.create(
        model="echo-1", prompt="Once upon", max_tokens=20, stop=["\n"]
    )
    assert reply.object == "text_completion"
    assert reply.choices[0].text == "echo: Once upon"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 14
    assert echo.seen[-1].messages == [{"role": "user", "content": "Once upon"}]
    echoed = await client.completions.create(model="echo-1", prompt=["Hi"], echo=True)
    assert echoed.choices[0].text == "Hiecho: Hi"


async def test_streamed_completion(sdk: Any) -> None:
    client = await sdk(Scripted(usage=True))
    stream = await client.completions.create(
        model="echo-1", prompt="a b", stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        assert chunk.object == "text_completion"
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.text
            finish = choice.finish_reason or finish
    assert text == "echo: a b"
    assert finish == "stop"
    assert usage is not None and usage.prompt_tokens == 11


async def test_refused_fields(sdk: Any) -> None:
    client = await sdk(Scripted())
    with pytest.raises(openai.BadRequestError) as info:
        await client.completions.create(model="echo-1", prompt="def f(", suffix="return 1")
    assert info.value.param == "suffix"
    with pytest.raises(openai.BadRequestError) as info:
        await client.completions.create(model="echo-1", prompt=["a", "b"])
    assert info.value.param == "prompt"
    with pytest.raises(openai.BadRequestError) as info:
        await client.completions.create(model="echo-1", prompt=[[1, 2, 3]])
    assert info.value.param is not None and info.value.param.startswith("prompt")
    with pytest.raises(openai.BadRequestError):
        await client.completions.create(model="echo-1", prompt="x", n=2)


async def test_failures_before_and_after_the_first_byte(sdk: Any) -> None:
    client = await sdk(Scripted(fail=errors.ProviderError("upstream down")))
    with pytest.raises(openai.InternalServerError) as info:
        await client.completions.create(model="echo-1", prompt="x")
    assert info.value.status_code == 502
    client = await sdk(Scripted(fail_after=1))
    stream = await client.completions.create(model="echo-1", prompt="a b c", stream=True)
    with pytest.raises(openai.APIError, match="upstream dropped"):
        async for _ in stream:
            pass


async def test_per_provider_route(start_gateway: Any, tmp_path: Any) -> None:
    base = await start_gateway(plugins=[Scripted(), Scripted(name="Other")], data_dir=tmp_path)
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/api/Other/completions", json={"prompt": "hi"}) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["provider"] == "Other"


async def test_a_reasoning_only_answer_is_empty_in_completions(sdk: Any) -> None:
    """Legacy completions cannot show reasoning: an answer made of it alone is no answer
    (502 empty_answer, streamed or not), and a provider with text is tried instead."""
    client = await sdk(Ponderer(priority=1))
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            reply = await client.completions.create(model="echo-1", prompt="Think", stream=stream)
            if stream:
                async for _ in reply:
                    pass
        assert caught.value.status_code == 502
        assert caught.value.body["code"] == "empty_answer"
        assert "reasoning alone" in caught.value.body["message"]
    # The chat protocols show reasoning: the same answer is a success there.
    chat = await client.chat.completions.create(
        model="echo-1", messages=[{"role": "user", "content": "Think"}]
    )
    assert chat.choices[0].message.model_extra["reasoning_content"].startswith("Let me")


async def test_completions_fail_over_past_a_reasoning_only_provider(sdk: Any) -> None:
    client = await sdk(Ponderer(priority=1), Scripted(priority=2))
    reply = await client.completions.create(model="echo-1", prompt="Think")
    assert reply.choices[0].text == "echo: Think"
    stream = await client.completions.create(model="echo-1", prompt="Think", stream=True)
    assert "".join([c.choices[0].text async for c in stream if c.choices]) == "echo: Think"
