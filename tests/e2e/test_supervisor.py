"""The ``--workers`` supervisor (web/supervisor.py), as a real ``g4f-server api --workers 2``:
a worker killed by PID is replaced (and the server answers on), and a worker that keeps
dying makes the whole server exit non-zero, its other workers stopped with it."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.server_process import server_process


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "G4F_DATA_DIR": str(tmp_path / "data"),
        "G4F_JSON_LOGS": "true",
        **extra,
    }


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _wait(found: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := found()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return value


def _started(log: Path) -> list[tuple[int, int]]:
    """(worker index, pid) of each start, in order."""
    return [(e["worker"], e["pid"]) for e in _events(log) if e["event"] == "worker_started"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = _env(tmp_path)
    with server_process("--workers", "2", "--load-plugins", "none", env=env, log=log) as (
        proc,
        base,
    ):
        first = _wait(lambda: len(_started(log)) == 2 and _started(log), "two workers")
        victim = dict(first)[1]
        os.kill(victim, signal.SIGKILL)
        again = _wait(lambda: len(_started(log)) == 3 and _started(log), "a replacement")
        index, pid = again[-1]
        assert index == 1 and pid != victim and _alive(pid)
        died = [e for e in _events(log) if e["event"] == "worker_died"]
        assert len(died) == 1 and died[0]["pid"] == victim and died[0]["exitcode"] == -9
        assert died[0]["level"] == "warning" and died[0]["restart_in"] == 0.5
        for _ in range(10):  # new connections, spread over both workers by the kernel
            urllib.request.urlopen(base + "/health", timeout=5).read()
        assert proc.poll() is None


def test_a_worker_that_keeps_dying_makes_the_server_exit_non_zero(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = _env(tmp_path, G4F_WORKER_RESTARTS="2")
    with server_process("--workers", "2", "--load-plugins", "none", env=env, log=log) as (
        proc,
        _,
    ):
        killed: set[int] = set()
        other = None
        deadline = time.monotonic() + 30
        while proc.poll() is None:  # kill worker 0 each time it is started again
            assert time.monotonic() < deadline, "the supervisor never gave up"
            for index, pid in _started(log):
                if index == 0 and pid not in killed:
                    killed.add(pid)
                    os.kill(pid, signal.SIGKILL)
                elif index == 1:
                    other = pid
            time.sleep(0.02)
        assert proc.returncode == 1
        assert len(killed) == 3  # the first start and two restarts
        events = [e["event"] for e in _events(log)]
        assert events.count("worker_died") == 3 and "workers_gave_up" in events
        assert other is not None
        _wait(lambda: not _alive(other), "the healthy worker was left running", 10)
