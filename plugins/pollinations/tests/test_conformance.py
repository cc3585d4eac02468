"""The kernel's conformance suite (g4f_server.testing.conformance) against this plugin, on a
fresh emulator of its own (built on g4f_server.testing.upstream) for each check: every wire
protocol and service it declares, import cost, model listing with the hosts up and
unreachable, the upstream's 401, 429, 500, a stall, a stream cut mid-answer, an empty
answer, a client that hangs up (the upstream request closed within 1 s), no secret in the
logs. Twice: anonymous (the legacy hosts, as ``g4f-server conformance pollinations
--emulator plugins/pollinations/tests/emulator.py --faults`` runs it) and with a key (the
gateway host)."""

from __future__ import annotations

from typing import Any

import pytest

import g4f_server_pollinations
from g4f_server.testing.conformance import ConformanceSuite, Target


class TestConformance(ConformanceSuite):
    @pytest.fixture
    def target(self, emu_mod: Any) -> Target:
        return Target(plugin=g4f_server_pollinations, upstream=emu_mod.Emulator())


class TestConformanceWithKey(ConformanceSuite):
    @pytest.fixture
    def target(self, emu_mod: Any) -> Target:
        keyed = emu_mod.Emulator(api_key="sk_test_key")
        return Target(plugin=g4f_server_pollinations, upstream=keyed)
