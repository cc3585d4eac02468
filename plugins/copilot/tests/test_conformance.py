"""The kernel's conformance suite (g4f_server.testing.conformance) against this plugin, on a
fresh emulator of its own (built on g4f_server.testing.upstream) for each check: every wire
protocol for each capability it declares, import cost, model listing, the upstream's 401,
429 and 500 on the session start, a stall, a socket cut mid-answer, an empty answer, a
client that hangs up (the chat socket closed within 1 s), no secret in the logs. The same
as ``g4f-server conformance copilot --emulator plugins/copilot/tests/emulator.py
--faults``."""

from __future__ import annotations

from typing import Any

import pytest

import g4f_server_copilot
from g4f_server.testing.conformance import ConformanceSuite, Target


class TestConformance(ConformanceSuite):
    @pytest.fixture
    def target(self, emu_mod: Any) -> Target:
        return Target(plugin=g4f_server_copilot, upstream=emu_mod.CopilotEmulator())
