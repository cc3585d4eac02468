"""A response id is ``resp_``, the time in milliseconds (12 hex digits) and 64 random
bits (16): ids sort by age, and two made in the same millisecond differ."""

from __future__ import annotations

import re
import time

from g4f_server.protocols.responses.render import new_response_id


def test_an_id_is_the_time_then_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    ident = new_response_id()
    after = time.time_ns() // 1_000_000
    assert re.fullmatch(r"resp_[0-9a-f]{28}", ident)
    assert before <= int(ident[5:17], 16) <= after
    assert len({new_response_id()[17:] for _ in range(50)}) == 50


def test_ids_sort_by_age() -> None:
    first = new_response_id()
    time.sleep(0.002)
    assert new_response_id() > first
