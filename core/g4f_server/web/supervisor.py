"""The ``--workers N`` supervisor: N serving processes on one port, each replaced when
it dies, with back-off; it gives up (exit status 1) when one keeps dying.

Why restart here and not leave it to systemd or Docker: a worker can die alone (the OOM
killer picks the largest process, a native crash in a C extension) while the others keep
the port open, so the service looks up to its manager but serves with fewer workers for
ever. Why give up: a worker that dies at once every time (the port taken by another
program, the data folder unwritable) would otherwise be restarted for ever; the manager
(``Restart=on-failure``, ``restart: unless-stopped``) sees the non-zero exit and can act.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from g4f_server.logs import get_logger

log = get_logger("g4f_server")

# A worker that served this long before dying was not failing to start: its slot's count
# of quick deaths starts again (an OOM kill once a day is no reason to give up).
STABLE_SECONDS = 60.0
FIRST_DELAY = 0.5  # seconds before the first restart of a slot; doubles each quick death
MAX_DELAY = 30.0


@dataclass
class _Slot:
    process: BaseProcess | None = None
    started: float = 0.0
    quick_deaths: int = 0  # in a row, each within STABLE_SECONDS of its start
    restart_at: float | None = None  # when a dead worker's replacement is due


class Supervisor:
    """Starts ``count`` workers with ``spawn(index)`` and keeps them running.

    ``max_restarts``: quick deaths in a row that one slot may have; one more and the
    supervisor stops the others and returns 1. ``on_death(pid)`` is told of each dead
    worker (the metrics keep its counts, drop its gauges)."""

    def __init__(
        self,
        spawn: Callable[[int], BaseProcess],
        count: int,
        max_restarts: int,
        on_death: Callable[[int], None] | None = None,
    ) -> None:
        self._spawn = spawn
        self._slots = [_Slot() for _ in range(count)]
        self._max_restarts = max_restarts
        self._on_death = on_death
        self._stopping = False

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0) or until a slot gives up (1)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for index in range(len(self._slots)):
            self._start(index)
        while True:
            alive = {s.process.sentinel: i for i, s in enumerate(self._slots) if s.process}
            if self._stopping and not alive:
                return 0
            due = [s.restart_at for s in self._slots if s.restart_at is not None]
            timeout = max(0.0, min(due) - time.monotonic()) if due else None
            for sentinel in wait(list(alive), timeout):
                if self._reap(alive[sentinel]) and not self._stopping:
                    self._give_up()
                    return 1
            if not self._stopping:
                now = time.monotonic()
                for index, slot in enumerate(self._slots):
                    if slot.restart_at is not None and slot.restart_at <= now:
                        self._start(index)

    def _start(self, index: int) -> None:
        slot = self._slots[index]
        process = self._spawn(index)
        process.start()
        slot.process, slot.started, slot.restart_at = process, time.monotonic(), None
        log.info("worker_started", worker=index, pid=process.pid)

    def _reap(self, index: int) -> bool:
        """A worker ended: schedule its replacement; True when the slot gives up."""
        slot = self._slots[index]
        process = slot.process
        assert process is not None
        process.join()
        slot.process = None
        if self._on_death is not None and process.pid is not None:
            self._on_death(process.pid)
        if self._stopping:
            return False
        lived = time.monotonic() - slot.started
        slot.quick_deaths = 1 if lived >= STABLE_SECONDS else slot.quick_deaths + 1
        if slot.quick_deaths > self._max_restarts:
            log.error(
                "worker_died", worker=index, pid=process.pid, exitcode=process.exitcode,
                lived=round(lived, 1), restarts=slot.quick_deaths - 1, giving_up=True,
            )  # fmt: skip
            return True
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (slot.quick_deaths - 1))
        slot.restart_at = time.monotonic() + delay
        log.warning(
            "worker_died", worker=index, pid=process.pid, exitcode=process.exitcode,
            lived=round(lived, 1), restart_in=delay,
        )  # fmt: skip
        return False

    def _give_up(self) -> None:
        log.error("workers_gave_up", max_restarts=self._max_restarts)
        self._stopping = True
        for slot in self._slots:
            if slot.process is not None:
                slot.process.terminate()
        for slot in self._slots:
            if slot.process is not None:
                slot.process.join(15)
                if slot.process.exitcode is None:
                    slot.process.kill()

    def _stop(self, signum: int, frame: Any) -> None:
        self._stopping = True
        for slot in self._slots:
            slot.restart_at = None
            if slot.process is not None and slot.process.exitcode is None:
                slot.process.terminate()
