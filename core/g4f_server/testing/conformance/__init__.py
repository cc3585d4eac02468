"""The provider contract, checked end to end: ``g4f-server conformance PROVIDER`` and the
same checks as a pytest suite.

The command (``cli.py``) and a plugin's tests share ``Harness`` (an in-process gateway with
the one plugin, its emulator started and pointed at) and ``CHECKS``; each check returns
``PASS``/``FAIL``/``SKIP`` results. In a plugin's tests::

    from g4f_server.testing.conformance import ConformanceSuite, Target

    class TestConformance(ConformanceSuite):
        @pytest.fixture
        def target(self):
            return Target(plugin=g4f_server_parrot, upstream=ParrotUpstream())

Every check becomes a test (``test_check[hangup]``...): a FAIL fails it, a SKIP skips it.
``ConformanceSuite`` needs pytest and is imported on first use, so the command does not.
"""

from __future__ import annotations

from typing import Any

from g4f_server.testing.conformance.checks import CHECKS, run
from g4f_server.testing.conformance.harness import Harness, Result, Target

__all__ = ["CHECKS", "ConformanceSuite", "Harness", "Result", "Target", "run"]


def __getattr__(name: str) -> Any:
    if name == "ConformanceSuite":
        from g4f_server.testing.conformance.suite import ConformanceSuite

        return ConformanceSuite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
