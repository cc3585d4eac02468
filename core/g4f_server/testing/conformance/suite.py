"""The conformance checks as a pytest class: subclass it and give a ``target`` fixture."""

from __future__ import annotations

from typing import Any

import pytest

from g4f_server.testing.conformance.checks import CHECKS
from g4f_server.testing.conformance.harness import Harness, Target


class ConformanceSuite:
    """One test per check, each on a gateway of its own (a check leaves no state behind
    for the next: cooldowns, queued faults, cached answers)."""

    @pytest.fixture
    def target(self) -> Target:
        raise NotImplementedError("define a `target` fixture returning a conformance Target")

    @pytest.mark.parametrize("check", list(CHECKS))
    async def test_check(self, target: Target, check: str) -> None:
        async with Harness(target) as harness:
            results = await CHECKS[check](harness)
        failed = [str(r) for r in results if r.status == "FAIL"]
        if failed:
            pytest.fail("\n".join(failed), pytrace=False)
        if results and all(r.status == "SKIP" for r in results):
            pytest.skip("; ".join(r.detail for r in results))

    # The checks' results as plain data, for a test that wants them all at once.
    @staticmethod
    async def results(target: Target, names: list[str] | None = None) -> list[Any]:
        from g4f_server.testing.conformance.checks import run

        async with Harness(target) as harness:
            return await run(harness, names)
