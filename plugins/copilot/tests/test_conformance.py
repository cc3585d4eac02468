"""The kernel's conformance suite (g4f_server.testing.conformance) against this plugin,
pointed at its emulator by the ``copilot`` fixture: every wire protocol for each capability
it declares, import cost, model listing, no secret in the logs. The upstream fault checks
need an emulator built on g4f_server.testing.upstream and are skipped here (this plugin's
own failure tests cover them until its emulator moves onto the kit)."""

from __future__ import annotations

from typing import Any

import pytest

import g4f_server_copilot
from g4f_server.testing.conformance import ConformanceSuite, Target


class TestConformance(ConformanceSuite):
    @pytest.fixture
    def target(self, copilot: Any) -> Target:
        return Target(plugin=g4f_server_copilot, config={})
