"""The cost guards' verdict (``bench/instructions.py --check`` per request,
``bench/protocol_cost.py --check`` per protocol): counts against a committed baseline,
each allowed to grow by the baseline's tolerance."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser, counted: str) -> None:
    """``--check FILE`` and ``--write-baseline FILE`` (one or the other)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--check",
        metavar="FILE",
        help=f"exit 1 when {counted} grew more than the file's tolerance over its baseline",
    )
    group.add_argument("--write-baseline", metavar="FILE", help="write the counts as a baseline")


def run_settings(
    args: argparse.Namespace, defaults: dict[str, Any], baseline_defaults: dict[str, Any]
) -> dict[str, Any] | None:
    """The baseline to check against (None without ``--check``), and the run's settings
    left unset filled in: the baseline's own with ``--check`` (like with like), the
    baseline run's with ``--write-baseline``, else ``defaults``."""
    baseline = json.loads(Path(args.check).read_text()) if args.check else None
    if args.write_baseline:
        defaults = baseline_defaults
    if baseline is not None:
        defaults = {key: baseline[key] for key in defaults}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return baseline


def check(
    before: dict[str, float],
    now: dict[str, float],
    tolerance: float,
    python: str | None,
    what: str,
    hint: str,
) -> int:
    """0 when every count of ``before`` is within ``tolerance`` in ``now``, else 1; prints
    each, and which grew (``what`` names the counts, ``hint`` what to do then)."""
    grown = []
    print()
    width = max(map(len, before), default=0)
    for label, count in before.items():
        change = now[label] / count - 1
        verdict = "over" if change > tolerance else "ok"
        print(f"{label:<{width}} {count:>12,} -> {now[label]:>12,.0f} ({change:+.1%}) {verdict}")
        if change > tolerance:
            grown.append(f"{label} {change:+.1%}")
    if python != platform.python_version():
        print(f"note: the baseline was counted on Python {python}")
    if grown:
        print(f"FAIL: {what} grew more than {tolerance:.0%}: {', '.join(grown)}. {hint}")
        return 1
    print(f"{what} within {tolerance:.0%} of the baseline")
    return 0
