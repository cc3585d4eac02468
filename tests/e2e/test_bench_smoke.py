"""The benchmark harness runs end to end (bench/run.py --smoke): fake upstream, relay and
gateway start, take load, and get ended. Numbers are checked for presence, never speed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the harness reads /proc"
)


def _bench(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a bench script from the repository root; it must exit 0 (else its output tails)."""
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_harness_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    doc = tmp_path / "performance.md"
    proc = _bench(
        [sys.executable, str(RUN), "--smoke", "--json", str(out), "--output", str(doc)], timeout=300
    )
    results = json.loads(out.read_text())

    load = results["load"]
    assert set(load) == {"json/c1", "stream/c1"}
    for scenario in load.values():
        for target in ("upstream", "relay", "gateway"):
            row = scenario[target]
            assert row["requests"] > 0, (target, row)
            assert row["errors"] == 0, (target, row)
            assert row["rps"] > 0 and row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"]
    for key, pair in results["pairs"].items():  # one round: one relay/gateway pair
        row = load[key]
        assert pair["pairs"] == 1
        assert pair["ratio"] == pytest.approx(row["gateway"]["rps"] / row["relay"]["rps"])
    assert load["json/c1"]["gateway"]["cpu_pct"] > 0
    assert results["peak_rss_mb"] > 0

    for kind in ("unpaced", "paced"):
        for target in ("upstream", "relay", "gateway"):
            timing = results["ttfb"][kind][target]
            assert 0 < timing["first_byte_ms"] <= timing["first_token_ms"] <= timing["total_ms"]

    startup = results["startup"]
    assert startup["gateway"] > 0 and startup["gateway_rss"] > 0 and startup["relay"] > 0
    assert results["import"]["wall_ms"] > 0 and results["import"]["importtime_ms"] > 0
    assert results["access_lines"] > 0  # the gateway ran with its access log on

    text = doc.read_text()
    assert "<!-- bench:results:start -->" in text and "| json/c1 |" in text
    assert "| json/c1 |" in proc.stdout  # the table is printed too


def test_harness_smoke_before_and_workers(tmp_path: Path) -> None:
    """--before DIR runs a second checkout's gateway in the same rounds (here this
    checkout again) and --workers 2 compares one worker with two per protocol, with the
    CPU that caps the scaling; both land in the table."""
    out = tmp_path / "results.json"
    argv = [sys.executable, str(RUN), "--smoke", "--before", str(ROOT), "--workers", "2"]
    proc = _bench([*argv, "--json", str(out), "--output", "-"], timeout=300)
    results = json.loads(out.read_text())
    for key, pair in results["pairs"].items():
        row = results["load"][key]
        assert row["before"]["requests"] > 0 and row["before"]["errors"] == 0
        assert pair["before_ratio"][1] == pytest.approx(row["before"]["rps"] / row["relay"]["rps"])
    workers = results["workers"]
    assert set(workers["rows"]) == {"chat-json", "chat", "responses", "messages"}
    for row in workers["rows"].values():
        for label in ("1", "2"):
            run = row["load"][label]
            assert run["requests"] > 0 and run["errors"] == 0 and run["cpu_pct"] > 0
            assert run["load_cpu_pct"] > 0 and run["machine_cpu_pct"] > 0
    assert "### The same run before the change, for comparison" in proc.stdout
    assert "| Anthropic Messages, stream |" in proc.stdout


def test_sqlite_save_bench_smoke() -> None:
    """bench/sqlite_save.py runs both layouts, the store and the store at its cap with both
    kinds of response id, and prints a figure for each."""
    script = str(ROOT / "bench" / "sqlite_save.py")
    proc = _bench(
        [sys.executable, script, "--saves", "300", "--rounds", "1", "--cap", "300"], timeout=120
    )
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| schema ")]
    assert len(rows) == 2
    for row in rows:
        cpu, wal = (float(cell) for cell in row.strip("|").split("|")[1:])
        assert cpu > 0 and wal > 0
    assert "store.save_response:" in proc.stdout and "largest WAL" in proc.stdout
    kinds = ("| random ids |", "| time-ordered ids |")
    capped = [line for line in proc.stdout.splitlines() if line.startswith(kinds)]
    assert len(capped) == 2
    assert all(float(row.strip("|").split("|")[1]) > 0 for row in capped)


def test_protocol_cost_pieces_run_and_render_their_grammars() -> None:
    """bench/protocol_cost.py's pieces (counted under valgrind by hand, not here) still
    run against today's protocol modules, and each renders its own grammar."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import protocol_cost
    finally:
        sys.path.remove(str(ROOT / "bench"))
    pieces = protocol_cost.pieces()
    assert set(pieces) >= {"baseline", "parse-chat", "parse-responses", "render-chat"}
    one_read = {name: pieces[f"render-{name}"]() for name in ("chat", "responses", "messages")}
    # As the relay writes them: the start with the one read's deltas, then the end.
    assert all(len(writes) == 2 for writes in one_read.values())
    chat, responses, messages = (b"".join(w) for w in one_read.values())
    assert chat.count(b'"content":"tok') == 20 and chat.endswith(b"data: [DONE]\n\n")
    assert responses.count(b"event: response.output_text.delta") == 20
    assert b"event: response.completed" in responses
    assert messages.count(b"event: content_block_delta") == 20
    assert messages.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    # A read a delta: a write each, the same events (the sequence numbers run on).
    by_delta = protocol_cost.pieces(batch=1)["render-responses"]()
    assert len(by_delta) == 21
    numbers = re.findall(rb'"sequence_number":(\d+)', b"".join(by_delta))
    assert [int(n) for n in numbers] == list(range(len(numbers))) and len(numbers) == 28
    _, asked = pieces["parse-responses"]()
    assert asked.messages[0].role == "system" and asked.stream is True


def test_upstreams_smoke(tmp_path: Path) -> None:
    """bench/run.py --only upstreams: the openai_compat and Pollinations gateways on the
    same fake upstream answer chat (checked for content), and embeddings come back as 8
    vectors of 1,536 through the gateway and the relay; every run counted requests."""
    out = tmp_path / "upstreams.json"
    proc = _bench(
        [sys.executable, str(RUN), "--only", "upstreams", "--smoke", "--json", str(out)],
        timeout=300,
    )
    results = json.loads(out.read_text())
    assert set(results["chat"]) == {"json/c1", "stream/c1"}
    for row in results["chat"].values():
        for name in ("pollinations", "openai_compat"):
            assert row["load"][name]["requests"] > 0 and row["load"][name]["errors"] == 0
        assert row["ratio"][1] > 0
    load = results["embeddings"]["c1"]["load"]
    for label in ("relay", "gateway base64", "gateway float"):
        assert load[label]["requests"] > 0 and load[label]["errors"] == 0, (label, load[label])
    assert "openai_compat keeps >= 90%" in proc.stdout


def test_cold_start_ab_smoke() -> None:
    """bench/cold_start_ab.py starts each checkout's server and prints both medians (here
    the same checkout twice, one round)."""
    script = str(ROOT / "bench" / "cold_start_ab.py")
    proc = _bench(
        [sys.executable, script, "--before", str(ROOT), "--after", str(ROOT), "--rounds", "1"],
        timeout=120,
    )
    for name in ("before", "after"):
        line = next(x for x in proc.stdout.splitlines() if x.startswith(f"{name}: "))
        seconds = float(line.split("median ")[1].split(" s")[0])
        rss = float(line.split("RSS median ")[1].split(" MB")[0])
        assert 0 < seconds < 30 and 10 < rss < 1000, line


@pytest.mark.skipif(
    not (shutil.which("valgrind") and shutil.which("callgrind_control")),
    reason="the instruction-count guard needs valgrind (apt-get install valgrind; .ci/run does)",
)
def test_instructions_per_request_within_the_baseline() -> None:
    """The regression guard: a short bench/instructions.py run (json and stream through the
    gateway, under callgrind) stays within the tolerance of the committed baseline, so a
    change that makes every request dearer fails CI. A change meant to cost more refreshes
    the baseline: bench/instructions.py --write-baseline bench/instructions-baseline.json."""
    script = str(ROOT / "bench" / "instructions.py")
    baseline = str(ROOT / "bench" / "instructions-baseline.json")
    proc = _bench([sys.executable, script, "--check", baseline], timeout=600)
    assert "within 10% of the baseline" in proc.stdout


# Each guard's counts as its baseline file holds them: the baseline, counts 9% above it
# (or below), counts with one 11% above it, and how the verdict names that one.
_GUARDS = {
    "instructions": (
        {"json": {"gateway": 1000}, "stream": {"gateway": 2000}},
        {"json": {"gateway": 1090}, "stream": {"gateway": 1900}},
        {"json": {"gateway": 1000}, "stream": {"gateway": 2220}},
        "stream/gateway",
    ),
    "protocol_cost": (
        {"parse-chat": 1000, "render-responses": 2000},
        {"parse-chat": 1090, "render-responses": 1900},
        {"parse-chat": 1000, "render-responses": 2220},
        "render-responses",
    ),
}


@pytest.mark.parametrize("script", sorted(_GUARDS))
def test_guard_fails_on_growth_over_the_tolerance(
    script: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each cost guard's verdict (bench/guard.py): 9% more passes, 11% more fails and
    names what grew."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        module = __import__(script)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    counts, within, grown, label = _GUARDS[script]
    baseline = {"tolerance": 0.10, "counts": counts}
    assert module._check(baseline, within) == 0
    assert module._check(baseline, grown) == 1
    assert f"{label} +11.0%" in capsys.readouterr().out


@pytest.mark.skipif(
    not shutil.which("valgrind"),
    reason="the per-protocol guard needs valgrind (apt-get install valgrind; .ci/run does)",
)
def test_protocol_cost_within_the_baseline() -> None:
    """The per-protocol regression guard: each protocol's parse and render, counted in
    process (bench/protocol_cost.py --check), stays within the tolerance of the committed
    baseline; a protocol's own work is a few percent of a request, under the whole-request
    guard's tolerance, so this is where a dearer grammar shows."""
    script = str(ROOT / "bench" / "protocol_cost.py")
    baseline = str(ROOT / "bench" / "protocol-cost-baseline.json")
    proc = _bench([sys.executable, script, "--check", baseline], timeout=900)
    assert "a protocol's own work within 10% of the baseline" in proc.stdout
    assert "render-responses" in proc.stdout and "parse-messages" in proc.stdout


def test_breakdown_groups_a_profiled_gateways_time(tmp_path: Path) -> None:
    """bench/breakdown.py profiles a gateway between its two signals and groups the time:
    each concern that serves a chat request has time in it, and the catch-all group is not
    where most of it lands (a grouping that matched nothing would put it all there)."""
    script = str(ROOT / "bench" / "breakdown.py")
    proc = _bench(
        [sys.executable, script, "--modes", "json", "--requests", "30", "--warmup", "5"],
        timeout=300,
    )
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 3 and cells[1].replace(".", "").isdigit():
            rows[cells[0]] = float(cells[1])
    assert rows["pipeline: turn, dispatch, transcript"] > 0, proc.stdout
    assert rows["plugin: upstream reading and event shaping"] > 0, proc.stdout
    for group in (
        "web: edge middleware, admission, body reading",
        "aiohttp server: HTTP parse, response write",
        "aiohttp client: the upstream request",
    ):
        assert rows[group] > 0, (group, proc.stdout)
    whole = rows.pop("all")
    assert rows["other: built-ins and the standard library"] < whole / 2, proc.stdout


@pytest.mark.parametrize(("patches", "young"), [("", 10_000), ("gc-700", 700)])
def test_gc_stats_reads_a_running_gateways_collector(patches: str, young: int) -> None:
    """bench/gc_stats.py: the gateway's collector as it runs (its threshold from the
    kernel's start-up, or CPython's default put back by the gc-700 patch) and a row per
    scenario with the load's req/s."""
    argv = [sys.executable, str(ROOT / "bench" / "gc_stats.py"), "--scenarios", "chat/c4"]
    argv += ["--duration", "1", "--warmup", "0.5", "--patches", patches]
    proc = _bench(argv, timeout=120)
    assert f"collector thresholds [{young}, 10, 10]" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| chat/c4 |"))
    rps, *counts = (cell.strip() for cell in row.split("|")[2:-1])
    assert float(rps.replace(",", "")) > 0
    assert all(float(count) >= 0 for count in counts) and len(counts) == 4


def test_ab_smoke() -> None:
    """bench/ab.py: a variant beside the relay on chat, alone on a protocol's scenario
    (the relay speaks chat only), each row with its CPU per request split into the
    server's user and system time, the load generator's and the upstream's."""
    argv = [sys.executable, str(ROOT / "bench" / "ab.py"), "--variants", "now="]
    argv += ["--scenarios", "stream/c1,responses/c1", "--rounds", "1", "--duration", "1"]
    proc = _bench([*argv, "--warmup", "0.2"], timeout=300)
    rows = {
        tuple(cells[:2]): cells[2:]
        for line in proc.stdout.splitlines()
        if line.startswith(("| stream/c1", "| responses/c1"))
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert set(rows) == {("stream/c1", "relay"), ("stream/c1", "now"), ("responses/c1", "now")}
    for (scenario, _), cells in rows.items():
        rps, to_relay, _, _, cpu, user, system, load, upstream = cells
        assert float(rps.replace(",", "")) > 0
        assert (to_relay == "-") == (scenario == "responses/c1")
        # A server's own work and the kernel's (sockets) both show; whole microseconds:
        # the parts may round a microsecond away from the sum.
        assert int(user) > 0 and int(system) > 0
        assert abs(int(user) + int(system) - int(cpu)) <= 1
        assert int(load) > 0 and int(upstream) > 0
