"""Cold start and idle RSS of two checkouts, interleaved (noise hits both alike).

    .venv/bin/python bench/cold_start_ab.py --before ../old-checkout --after . --rounds 7
    .venv/bin/python bench/cold_start_ab.py --before ../old --plugins copilot,pollinations

Each start is ``<checkout>/.venv/bin/g4f-server api`` on a free loopback port with an empty
data folder: the time from spawn to the first 200 of ``/health``, then the process's RSS
after 2.5 s of idling (after the gc freeze). Prints the medians.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_once(tree: Path, plugins: str | None = None) -> tuple[float, float]:
    port, data = free_port(), tempfile.mkdtemp()
    env = {"PATH": "/usr/bin:/bin", "HOME": data, "G4F_DATA_DIR": data, "XDG_DATA_HOME": data}
    began = time.perf_counter()
    command = [str(tree / ".venv/bin/g4f-server"), "api", "--port", str(port)]
    if plugins:
        command += ["--load-plugins", plugins]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{tree}: the server exited with {proc.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.005)
        seconds = time.perf_counter() - began
        time.sleep(2.5)
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        return seconds, rss_kb / 1024
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=Path("."))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--plugins",
        help="load only these plugins in both (e.g. copilot,pollinations: the layout's own cost,"
        " without a plugin the earlier checkout did not have)",
    )
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            found[name].append(start_once(tree, args.plugins))
    for name, runs in found.items():
        start = statistics.median(s for s, _ in runs)
        rss = statistics.median(r for _, r in runs)
        print(
            f"{name}: cold start median {start:.3f} s, idle RSS median {rss:.1f} MB (n={len(runs)})"
        )


if __name__ == "__main__":
    main()
