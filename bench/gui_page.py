"""The chat page's weight and time to first paint, in Debian's headless Chromium.

    .venv/bin/python bench/gui_page.py            # 9 cold loads, medians printed
    .venv/bin/python bench/gui_page.py --loads 3

Starts ``g4f-server api --gui`` (the plugins pointed at a closed loopback port: nothing
leaves the host) as a child process, then loads ``/`` in a fresh browser context per load
(an empty cache: every asset travels) and reads the browser's own Resource and Paint
Timing entries. Prints the bytes on the wire (gzip) and decoded, per file and in all, and
the medians of first paint, first contentful paint and "ready" (models listed, the last
conversation opened).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import chromium  # noqa: E402
from tests.server_process import offline_env, server_process  # noqa: E402

TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = Object.fromEntries(
    performance.getEntriesByType('paint').map((e) => [e.name, e.startTime]));
  const files = [nav, ...performance.getEntriesByType('resource')].map((e) => ({
    name: new URL(e.name).pathname, wire: e.encodedBodySize, decoded: e.decodedBodySize,
  }));
  return {paint, files, ready: Number(document.documentElement.dataset.readyAt)};
}"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = offline_env(home, G4F_STARTUP_TIMEOUT="1", G4F_ACCESS_LOG="false")
        with server_process("--gui", env=env) as (_, base), chromium() as browser:
            runs = []
            for _ in range(args.loads):
                context = browser.new_context()
                page = context.new_page()
                page.goto(base + "/")
                page.wait_for_selector("html[data-ready='1']")
                runs.append(page.evaluate(TIMINGS))
                context.close()
    last = runs[-1]
    print(f"{'file':<40} {'wire B':>8} {'decoded B':>10}")
    for f in last["files"]:
        print(f"{f['name']:<40} {f['wire']:>8} {f['decoded']:>10}")
    assets = [f for f in last["files"] if not f["name"].startswith("/v1/")]
    wire = sum(f["wire"] for f in assets)
    decoded = sum(f["decoded"] for f in assets)
    print(f"{'page + assets':<40} {wire:>8} {decoded:>10}  ({wire / 1024:.1f} KiB on the wire)")

    def median(key: str) -> float:
        return statistics.median(r["paint"].get(key, float("nan")) for r in runs)

    print(f"first paint            median {median('first-paint'):6.1f} ms over {len(runs)} loads")
    print(f"first contentful paint median {median('first-contentful-paint'):6.1f} ms")
    print(f"ready (models listed)  median {statistics.median(r['ready'] for r in runs):6.1f} ms")


if __name__ == "__main__":
    main()
