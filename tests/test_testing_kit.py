"""The helpers g4f_server.testing gives plugin authors."""

from __future__ import annotations

import asyncio

import pytest

from g4f_server.testing import wait_until


async def test_wait_until_returns_once_the_condition_holds() -> None:
    flag: list[bool] = []
    asyncio.get_running_loop().call_later(0.05, flag.append, True)
    await wait_until(lambda: bool(flag), timeout=5)
    assert flag == [True]


async def test_wait_until_fails_the_test_after_its_timeout() -> None:
    with pytest.raises(AssertionError, match=r"socket closed not reached within 0\.05s"):
        await wait_until(lambda: False, timeout=0.05, what="socket closed")
