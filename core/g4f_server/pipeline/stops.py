"""``stop`` sequences cut by the kernel, for models that do not honour them upstream.

A model whose ``ModelInfo`` lacks the ``stop`` capability may ignore the request's stop
sequences (many free upstreams do). The kernel then cuts the answer's text at the first
stop sequence itself, streamed or not, and ends the answer there with finish reason
``stop`` (Anthropic: ``stop_reason: stop_sequence`` naming it). The request still carries
``stop`` upstream: a model that does honour it simply never sends one, and the cut finds
nothing.

Streamed text is held back by at most the length of the longest stop sequence minus one,
so that a stop split across two chunks is still found: whatever is sent can no longer be
the start of a stop sequence. Only a tail that really is the start of one is held (a
chunk ending in "ST" with the stop "STOP"); other chunks go out whole and at once. The cut
happens on the provider's stream (as ``ChatRun`` is read) before any protocol renders it, so
chat completions, completions, Messages and Responses all get it; once it is found the
provider's stream is closed (``ChatRun.close``), so the upstream stops too.

Always on (no ``--emulate stop``): unlike the tools and JSON emulations it asks nothing
of the model and changes nothing of what is sent; it only makes the answer end where the
client asked, as a model that honours ``stop`` would. A request without ``stop`` never
gets here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from g4f_server import events as ev

if TYPE_CHECKING:
    from g4f_server.providers.registry import Route

CAPABILITY = "stop"  # a model that declares it stops at the request's sequences itself
KIND = "stop"  # how it is named in the X-G4F-Emulated header
# Events that end a run of text: held text goes out before them, in order.
_BREAKS = (ev.Media, ev.ToolCallDelta, ev.Finish)


def needed(route: Route, stop: Sequence[str] | None) -> bool:
    """Whether the kernel cuts: the request has a stop sequence and the model does not
    declare that it honours them (a model the provider does not list is not trusted)."""
    if not stop or not any(stop):
        return False
    info = route.info
    return info is None or CAPABILITY not in info.capabilities


class StopCut:
    """Feeds batches of events, returns what may be sent; ``found`` once a stop matched."""

    __slots__ = ("found", "pending", "starts", "stops")

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(dict.fromkeys(s for s in stops if s))
        # Text without any stop's first character can neither hold a stop nor end with
        # the start of one: one regex search tells, and such a chunk goes out as it is.
        self.starts = re.compile("[" + re.escape("".join({s[0] for s in self.stops})) + "]")
        self.pending = ""  # text held back: it could be the start of a stop sequence
        self.found: str | None = None

    def _first_stop(self, text: str) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for stop in self.stops:
            at = text.find(stop)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, stop)
        return best

    def _held_from(self, text: str) -> int:
        """Where the tail that could still become a stop sequence starts (``len(text)``:
        none). At most the longest stop minus one character is held, and only when the
        text really ends with the start of a stop: most chunks go out whole, unchanged."""
        held = len(text)
        for stop in self.stops:
            # The earliest place in the last len(stop) - 1 characters where the rest of
            # the text is how ``stop`` begins.
            at = text.find(stop[0], max(0, len(text) - len(stop) + 1))
            while 0 <= at < held:
                if stop.startswith(text[at:]):
                    held = at
                    break
                at = text.find(stop[0], at + 1)
        return held

    def feed(self, batch: Sequence[ev.ChatEvent]) -> list[ev.ChatEvent]:
        out: list[ev.ChatEvent] = []
        for event in batch:
            if isinstance(event, ev.TextDelta):
                pending = self.pending
                if not pending and self.starts.search(event.text) is None:
                    out.append(event)  # most chunks
                    continue
                text = pending + event.text if pending else event.text
                hit = self._first_stop(text)
                if hit is not None:
                    at, stop = hit
                    if at:
                        out.append(ev.TextDelta(text[:at]))
                    self.pending, self.found = "", stop
                    out.append(ev.Finish("stop", stop))
                    return out  # the rest of the answer is dropped
                held = self._held_from(text)
                if held == len(text):
                    self.pending = ""
                    out.append(event if not pending else ev.TextDelta(text))
                else:
                    self.pending = text[held:]
                    if held:
                        out.append(ev.TextDelta(text[:held]))
                continue
            if self.pending and isinstance(event, _BREAKS):
                out.append(ev.TextDelta(self.pending))
                self.pending = ""
            out.append(event)  # usage, reasoning, citations...: not part of the text
        return out

    def flush(self) -> list[ev.ChatEvent]:
        """The end of the answer: what was held back is text after all."""
        if not self.pending:
            return []
        text, self.pending = self.pending, ""
        return [ev.TextDelta(text)]
