"""Instructions a protocol's own code costs per request, piece by piece (valgrind callgrind).

    .venv/bin/python bench/protocol_cost.py                 # ~1 min; needs valgrind
    .venv/bin/python bench/protocol_cost.py --calls 500 --pieces parse-chat,parse-responses

``bench/instructions.py`` counts a whole request in the gateway; this splits the part that
differs between protocols: parsing the wire request into the ``ChatRequest`` every
provider takes, and rendering one answer (the bench's 20 text deltas and the upstream's
usage) as the protocol's stream. A stream is rendered as ``streaming.relay`` writes it:
the start, the text deltas of each read spliced at once (``--batch`` deltas a read: 20,
one read, is what the bench's upstream gives at 32 connections), one joined write per
read and the end. Each piece runs ``--calls`` times in its own process under callgrind;
a process that runs nothing but the same set-up is the baseline taken off. Instruction
counts repeat whatever else the machine is doing, so small differences show.

The per-protocol regression guard (CI: tests/e2e/test_bench_smoke.py) compares a short
run with the committed baseline, piece by piece: a protocol's own work is a few percent
of a whole request, under ``bench/instructions.py``'s tolerance and drift, but a
piece's count repeats to a few instructions, so each grows by at most ``tolerance``:

    .venv/bin/python bench/protocol_cost.py --check bench/protocol-cost-baseline.json
    .venv/bin/python bench/protocol_cost.py --write-baseline bench/protocol-cost-baseline.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import guard

# The bench's request bodies (run.py): the same question in each grammar.
import run


def pieces(batch: int = 20) -> dict[str, Callable[[], object]]:
    """Each piece, ready to be called (imports and set-up are the baseline's too);
    ``batch``: the text deltas of one read."""
    import orjson

    from g4f_server import events as ev
    from g4f_server.pipeline.transcript import Transcript
    from g4f_server.protocols.anthropic.render import MessageStream
    from g4f_server.protocols.anthropic.request import MessagesRequest
    from g4f_server.protocols.openai_chat.render import ChunkRenderer, new_completion_id
    from g4f_server.protocols.responses.creation import Creation
    from g4f_server.protocols.responses.frame import Frame
    from g4f_server.protocols.responses.render import ResponseStream, new_response_id
    from g4f_server.protocols.responses.request import ResponsesRequest
    from g4f_server.protocols.streaming import StreamRenderer, splice
    from g4f_server.requests import ChatRequest
    from g4f_server.web.validation import parse_model

    chat_body = orjson.loads(run.chat_body(True))
    responses_body = orjson.loads(run.responses_body())

    def parse_chat() -> ChatRequest:
        return parse_model(ChatRequest, dict(chat_body))

    def parse_responses() -> tuple[ResponsesRequest, ChatRequest]:
        # As the route does: validated, then its chat request made (Creation).
        body = parse_model(ResponsesRequest, dict(responses_body))
        return body, Creation(None, body, []).chat  # type: ignore[arg-type]

    messages_body = orjson.loads(run.messages_body())

    def parse_messages() -> ChatRequest:
        # As the route does: validated, then its chat request made.
        return parse_model(MessagesRequest, dict(messages_body)).to_chat()

    chat = parse_chat()
    request, asked = parse_responses()
    messages_asked = parse_messages()
    plan = request.tool_plan()
    texts = [f"tok{i} " for i in range(20)]
    reads = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    transcript = Transcript()
    for text in texts:
        transcript.add(ev.TextDelta(text=text))
    transcript.add(ev.Usage(prompt_tokens=12, completion_tokens=20, total_tokens=32))

    def relayed(renderer: StreamRenderer) -> list[bytes]:
        """The writes ``streaming.relay`` makes of the answer: the start with the first
        read, each read's deltas spliced and joined, the end on its own."""
        put = getattr(renderer, "splice_texts", splice)
        lines, writes = [renderer.start()], []
        for read in reads:
            before, after = renderer.text_parts  # type: ignore[attr-defined]
            put(lines, list(read), before, after)
            writes.append(b"".join(lines))
            lines.clear()
        writes.append(renderer.end(transcript))
        return writes

    def render_chat() -> list[bytes]:
        return relayed(ChunkRenderer(new_completion_id(), "openai", "pollinations", request=chat))

    def render_responses() -> list[bytes]:
        frame = Frame(request, new_response_id(), "openai", "pollinations")
        return relayed(ResponseStream(frame, asked, plan))

    def render_messages() -> list[bytes]:
        return relayed(MessageStream(None, "openai", "pollinations", messages_asked))

    def response_object() -> bytes:
        # What a route pays for the frame: its bytes (a plain request's, from pieces).
        frame = Frame(request, new_response_id(), "openai", "pollinations")
        return b"".join(frame.encoded().pieces())

    return {
        "baseline": lambda: None,
        "parse-chat": parse_chat,
        "parse-responses": parse_responses,
        "parse-messages": parse_messages,
        "render-chat": render_chat,
        "render-responses": render_responses,
        "render-messages": render_messages,
        "response-frame": response_object,
    }


def _child(name: str, calls: int, batch: int) -> None:
    piece = pieces(batch)[name]
    for _ in range(calls):
        piece()


def _count(name: str, calls: int, batch: int, workdir: Path) -> int:
    out = workdir / f"callgrind.{name}"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    argv += [sys.executable, __file__, "--child", name, "--calls", str(calls)]
    argv += ["--batch", str(batch)]
    # One hash seed: set and dict orders (and so the counts) repeat from run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not match:
        raise SystemExit(f"{name}: callgrind failed:\n{proc.stderr[-2000:]}")
    return int(match.group(1))


# The guard's run: half a measurement's calls (a piece's first calls cost more, e.g. its
# first validation: fewer calls would carry more of that) and every piece but the frame,
# which the Responses render includes.
BASELINE_DEFAULTS = {
    "calls": 1000,
    "batch": 20,
    "pieces": "parse-chat,parse-responses,parse-messages,"
    "render-chat,render-responses,render-messages",
}
TOLERANCE = 0.10  # a piece may grow this much over the baseline before --check fails


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, help="calls of each piece (2000)")
    parser.add_argument("--pieces", help="comma-separated (default: all)")
    parser.add_argument("--batch", type=int, help="text deltas a read, 1-20 (20)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    guard.add_arguments(parser, "a piece")
    args = parser.parse_args(argv)
    baseline = guard.run_settings(
        args, {"calls": 2000, "batch": 20, "pieces": None}, BASELINE_DEFAULTS
    )
    if args.child:  # (before the default pieces: listing them runs the set-up once more)
        _child(args.child, args.calls, args.batch)
        return 0
    if args.pieces is None:
        args.pieces = ",".join(p for p in pieces() if p != "baseline")
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind not found: apt-get install -y valgrind")
    workdir = Path(tempfile.mkdtemp(prefix="g4f-pieces-"))
    counts: dict[str, int] = {}
    names = [p.strip() for p in args.pieces.split(",") if p.strip()]
    try:
        # Two processes at a time (counts do not depend on what else runs): the guard's
        # run takes half the time on two cores.
        with ThreadPoolExecutor(max_workers=2) as pool:
            totals = dict(
                zip(
                    ["baseline", *names],
                    pool.map(
                        lambda name: _count(name, args.calls, args.batch, workdir),
                        ["baseline", *names],
                    ),
                    strict=True,
                )
            )
        print(
            f"{args.calls} calls of each piece, {args.batch} text deltas a read,"
            " instructions per call (baseline taken off)\n"
        )
        print("| piece | instructions |")
        print("| --- | ---: |")
        for name in names:
            counts[name] = round((totals[name] - totals["baseline"]) / args.calls)
            print(f"| {name} | {counts[name]:,} |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.write_baseline:
        Path(args.write_baseline).write_text(json.dumps(_baseline(args, counts), indent=2) + "\n")
    if baseline is not None:
        return _check(baseline, counts)
    return 0


def _baseline(args: argparse.Namespace, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "about": "bench/protocol_cost.py --check: each piece may grow at most `tolerance` "
        "over these; refresh with --write-baseline (see its docstring)",
        "python": platform.python_version(),
        "calls": args.calls,
        "batch": args.batch,
        "pieces": args.pieces,
        "tolerance": TOLERANCE,
        "counts": counts,
    }


def _check(baseline: dict[str, Any], counts: dict[str, int]) -> int:
    """0 when every piece is within the tolerance of its baseline, else 1 (and which)."""
    return guard.check(
        baseline["counts"],
        counts,
        float(baseline.get("tolerance", TOLERANCE)),
        baseline.get("python"),
        "a protocol's own work",
        "Find the cost (callgrind on the piece), or if it is meant, refresh the baseline "
        "with --write-baseline.",
    )


if __name__ == "__main__":
    sys.exit(main())
