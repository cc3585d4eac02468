"""``g4f-server`` with experimental hot-path changes applied at start-up (monkeypatches).

Used by ``bench/ab.py`` to measure a proposed kernel change before anyone writes it for
real. Patches are named in ``G4F_BENCH_PATCHES`` (comma-separated); with none, this is
plain ``g4f-server``. They reach into kernel internals, so a kernel refactor may break
them: they are measuring tools, not code to ship.

The first set of patches (quiet client resets, plain tracebacks, no ``trust_env``, coalesced
SSE writes, cheap ids, ``gc.freeze``) was measured here and has since landed in the kernel
(docs/performance.md, "What changed after profiling"); add the next experiment to PATCHES.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def _kernel_stop() -> None:
    """The kernel cuts ``stop`` even for models that say they honour it (Pollinations does:
    its plugin cuts on the host that ignores stop): measures the kernel's cut (stops.py)
    on the bench's Pollinations model."""
    from g4f_server.pipeline import stops

    stops.needed = lambda route, stop: bool(stop)


def _gc_700() -> None:
    """CPython's default young-generation threshold (700) instead of the kernel's
    (api.YOUNG_GENERATION_THRESHOLD): what raising it saves under load."""
    import gc

    from g4f_server import api

    freeze = api._freeze_gc

    def freeze_with_default() -> None:
        freeze()
        gc.set_threshold(700, *gc.get_threshold()[1:])

    api._freeze_gc = freeze_with_default


def _gc_stats() -> None:
    """Time every collection (``gc.callbacks``) and keep the running totals per generation
    in the JSON file ``G4F_BENCH_GC_STATS`` names, rewritten every 0.2 s by a thread (the
    server's loop is not touched): bench/gc_stats.py reads it around each load."""
    import gc
    import json
    import threading
    import time

    path = os.environ["G4F_BENCH_GC_STATS"]
    totals = {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "collected": [0, 0, 0]}
    began = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
            return
        generation = info["generation"]
        totals["collections"][generation] += 1
        totals["seconds"][generation] += time.perf_counter() - began[0]
        totals["collected"][generation] += info["collected"]

    def write() -> None:
        while True:
            time.sleep(0.2)
            snapshot = json.dumps({**totals, "threshold": gc.get_threshold()})
            with open(path + ".tmp", "w") as out:
                out.write(snapshot)
            os.replace(path + ".tmp", path)

    gc.callbacks.append(timed)
    threading.Thread(target=write, daemon=True).start()


PATCHES: dict[str, Callable[[], None]] = {
    "kernel-stop": _kernel_stop,
    "gc-700": _gc_700,
    "gc-stats": _gc_stats,
}


def main() -> None:
    for name in filter(None, os.environ.get("G4F_BENCH_PATCHES", "").split(",")):
        if name.strip() not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {sorted(PATCHES) or 'none'}")
        PATCHES[name.strip()]()
    from g4f_server.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
