"""The kernel's conformance suite (g4f_server.testing.conformance) against this plugin, as
the Groq preset, on a fresh emulator of its own (built on g4f_server.testing.upstream):
every wire protocol, import cost, model listing with Groq up and unreachable, the upstream's
401, 429, 500, a stall, a stream cut mid-answer, an empty answer, a client that hangs up
(the upstream request closed within 1 s), no secret in the logs. The same as
``g4f-server conformance openai_compat --emulator plugins/openai_compat/tests/emulator.py
--faults --upstreams groq``."""

from __future__ import annotations

from typing import Any

import pytest

import g4f_server_openai_compat
from g4f_server.testing.conformance import ConformanceSuite, Target


class TestConformance(ConformanceSuite):
    @pytest.fixture
    def target(self, emu_mod: Any) -> Target:
        groq = emu_mod.Emulator(  # Groq's documented quirks, as the `emulator` fixture's
            refused=frozenset({"logprobs", "logit_bias", "top_logprobs"}),
            refused_message_fields=frozenset({"name"}),
        )
        return Target(
            plugin=g4f_server_openai_compat, upstream=groq, config={"upstreams": ["groq"]}
        )
