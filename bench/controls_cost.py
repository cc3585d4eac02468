"""Instructions the operator's controls cost per request, hook by hook (valgrind callgrind).

    .venv/bin/python bench/controls_cost.py              # ~1 min; needs valgrind
    .venv/bin/python bench/controls_cost.py --stream --calls 2000

``bench/instructions.py --servers plain,controls`` counts the whole server, whose count
drifts by 10-35k between runs; this counts the controls' own calls in one process, on
bench/controls.py's server (a named key, per-key rpm, tpm and concurrency limits,
metrics) and the bench's chat request: the hooks the edge and the turn call, in their
order, on a mocked request of the real app. Each step's figure is the run of every step
up to it less the run up to the one before (a step needs the state the earlier ones
left), all in one process under callgrind, switched on only around the counted calls.
What it does not see: aiohttp writing the six ``x-ratelimit-*`` headers (~8k), and the
turn's ``complete`` coroutine the ``finished`` observer needs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import controls
import run

STEPS = ("on_start", "key", "admit", "admitted", "on_prepare", "first_token", "finished")
STEPS += ("on_done", "access_line")


def _steps(stream: bool, count: int) -> tuple[Callable[[int, int], None], int]:
    """A call that runs the first ``upto`` steps on the ``index``th of ``count`` requests
    made up front (mocked requests are not free: none is made while counting)."""
    os.environ.update(controls.controls_env())
    os.environ["G4F_ACCESS_LOG"] = "true"
    import orjson
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from g4f_server import events as ev
    from g4f_server import logs
    from g4f_server.app import create_app
    from g4f_server.appkeys import KEY_NAME, SERVED_BY
    from g4f_server.config import AppConfig
    from g4f_server.controls import wiring
    from g4f_server.pipeline.observers import OBSERVERS
    from g4f_server.pipeline.transcript import Transcript
    from g4f_server.requests import ChatRequest
    from g4f_server.web.middleware import _access
    from g4f_server.web.validation import parse_model

    app = create_app(AppConfig.load(), plugins=[], load_entrypoints=False)
    edge = next(r.handler.edge for r in app.router.routes() if hasattr(r.handler, "edge"))
    observers = app[OBSERVERS]
    start, done, prepare = app[wiring.ON_START], app[wiring.ON_DONE], app[wiring.ON_PREPARE]
    admit_key = getattr(wiring, "ON_ADMIT", None)  # (older trees: the middleware admits)
    admit = app.get(admit_key) if admit_key is not None else None
    inner = edge.inner[0] if edge.inner else None
    chat = parse_model(ChatRequest, orjson.loads(run.chat_body(stream)))
    transcript = Transcript()
    for number in range(20):
        transcript.add(ev.TextDelta(text=f"tok{number} "))
    transcript.add(ev.Usage(prompt_tokens=12, completion_tokens=20, total_tokens=32))
    headers = dict(run.HEADERS)

    def mocked() -> web.Request:
        return make_mocked_request("POST", run.CHAT_PATH, headers=headers, app=app)

    async def matched() -> Any:
        info = await app.router.resolve(mocked())
        info.add_app(app)
        info._current_app = app  # what aiohttp sets as the app handles it
        return info

    info = asyncio.new_event_loop().run_until_complete(matched())
    requests, answers = [], []
    for _ in range(count):
        request = mocked()
        request._match_info = info
        request[SERVED_BY] = ("pollinations", "openai", 1)
        requests.append(request)
        if stream:
            answers.append(web.StreamResponse(headers={"Content-Type": "text/event-stream"}))
        else:
            answers.append(web.Response(body=b"{}", content_type="application/json"))
    logs._stream = io.StringIO()  # the access lines go nowhere

    def handler(request: web.Request) -> None:
        return None

    def steps(index: int, upto: int) -> None:
        request, answer = requests[index], answers[index]
        if upto > 0:
            start(request)
        if upto > 1:
            request[KEY_NAME] = edge.keyring.identify(request)  # type: ignore[union-attr]
        if upto > 2:
            if admit is not None:
                admit(request, "bench")
            else:
                inner(request, handler)  # type: ignore[misc]
        if upto > 3:
            observers.admitted_now(request, chat)  # type: ignore[misc]
        if upto > 4:
            prepare(request, answer)
        if upto > 5:
            observers.first_token(request, "pollinations")  # type: ignore[misc]
        if upto > 6:
            observers.finished(request, transcript, chat)  # type: ignore[misc]
        if upto > 7:
            done(request, answer)
        if upto > 8:
            _access(request, "0" * 32, "bench", 200, [], 0.0)
            logs._stream.seek(0)  # type: ignore[union-attr]
            logs._stream.truncate()  # type: ignore[union-attr]

    return steps, count


def _child(calls: int, stream: bool, out: str) -> None:
    warmup = 200
    steps, _ = _steps(stream, warmup + calls * (len(STEPS) + 1))
    for index in range(warmup):
        steps(index, len(STEPS))
    gc.collect()
    gc.freeze()  # the mocked requests are not the collector's work per request

    def control(command: str) -> None:
        argv = ["callgrind_control", command, str(os.getpid())]
        subprocess.run(argv, check=True, capture_output=True)

    control("--instr=on")
    first, totals = warmup, []
    for upto in range(len(STEPS) + 1):
        control("-z")
        for index in range(first, first + calls):
            steps(index, upto)
        first += calls
        control("-d")
        dump = Path(f"{out}.{os.getpid()}.{upto + 1}").read_text(errors="replace")
        totals.append(int(re.search(r"^summary:\s+(\d+)", dump, re.M).group(1)))  # type: ignore[union-attr]
    print(" ".join(map(str, totals)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="counted calls of each step")
    parser.add_argument("--stream", action="store_true", help="a streamed answer")
    parser.add_argument("--child", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.calls, args.stream, args.child)
        return 0
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install -y valgrind")
    workdir = Path(tempfile.mkdtemp(prefix="g4f-controls-"))
    out = workdir / "callgrind"
    try:
        argv_ = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        argv_ += [f"--callgrind-out-file={out}.%p", sys.executable, __file__, "--child", str(out)]
        argv_ += ["--calls", str(args.calls)] + (["--stream"] if args.stream else [])
        env = os.environ | {"PYTHONHASHSEED": "0"}
        proc = subprocess.run(argv_, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise SystemExit(f"callgrind failed:\n{proc.stderr[-2000:]}")
        totals = [int(word) for word in proc.stdout.split()]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    per_call = [(total - totals[0]) / args.calls for total in totals]
    print(f"{args.calls} calls of each step ({'stream' if args.stream else 'json'}), ", end="")
    print("instructions per call\n\n| step | instructions | up to it |\n| --- | ---: | ---: |")
    for number, name in enumerate(STEPS, 1):
        step = per_call[number] - per_call[number - 1]
        print(f"| {name} | {step:,.0f} | {per_call[number]:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
