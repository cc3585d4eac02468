"""The checks: each takes a running ``Harness`` and returns its results (one per provider
the plugin registered, or one for the plugin). The order of ``CHECKS`` is the order the
command prints them in."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from g4f_server import errors
from g4f_server.provider import FallbackModels, ModelInfo, ProviderInfo
from g4f_server.testing.conformance import wire
from g4f_server.testing.conformance.harness import Harness, Result

Check = Callable[[Harness], Awaitable[list[Result]]]
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # used in URLs and "provider:model"
HANGUP_LIMIT = 1.0  # seconds a provider may take to close its upstream after a hang-up

# The modules the idle server has loaded before any plugin: what a plugin's import is
# measured on top of (the contract, aiohttp, structlog).
_IMPORT_PROBE = """
import json, sys, time
import aiohttp, structlog
import g4f_server, g4f_server.hookspecs, g4f_server.provider, g4f_server.events
import g4f_server.errors, g4f_server.upstream, g4f_server.mediatypes
before = set(sys.modules)
started = time.perf_counter()
import {module}
took = time.perf_counter() - started
print(json.dumps({{"seconds": took, "pydantic": "pydantic" in sys.modules,
                  "heavy": sorted({{m.split(".")[0] for m in set(sys.modules) - before}})}}))
"""


def _label(h: Harness, name: str, entry: Any) -> str:
    return f"{name}[{entry.name}]" if len(h.entries) > 1 else name


def _model(entry: Any, capability: str) -> str | None:
    """The model to ask for ``capability``: the provider's default when it lists it,
    else the first listed model with the capability."""
    default = entry.default_model_for(capability)
    if default and entry.model(default) is not None:
        return f"{entry.name}:{entry.model(default).id}"
    for m in entry.models:
        if capability in m.capabilities:
            return f"{entry.name}:{m.id}"
    return None


# --- the plugin itself -----------------------------------------------------------------


async def provider_info(h: Harness) -> list[Result]:
    if not h.entries:
        return [Result("FAIL", "provider_info", "the plugin registered no provider")]
    results = []
    for entry in h.entries:
        info = entry.info
        problems = []
        if not isinstance(info, ProviderInfo):
            problems.append(f"returned {type(info).__name__}, not ProviderInfo")
        elif not _NAME_OK.match(info.name or ""):
            problems.append(f"name {info.name!r}: letters, digits, '.', '_' and '-' only")
        else:
            if info.auth not in ("none", "optional", "required"):
                problems.append(f"auth {info.auth!r}")
            if not isinstance(info.priority, int):
                problems.append("priority is not an int")
            for capability in sorted(entry.capabilities):
                default = entry.default_model_for(capability)
                if entry.models and default and entry.model(default) is None:
                    problems.append(f"default {capability} model {default!r} is not listed")
        name = _label(h, "provider_info", entry)
        detail = "; ".join(problems) or f"{info.name}, priority {info.priority}"
        results.append(Result("FAIL" if problems else "PASS", name, detail))
    return results


async def cheap_import(h: Harness) -> list[Result]:
    module = h.target.module_name
    if not module:
        return [Result("SKIP", "import", "the plugin is not a module (give Target.module)")]
    budget = h.target.import_budget
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _IMPORT_PROBE.format(module=module),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode:
        last = (err.decode().strip().splitlines() or ["no output"])[-1]
        return [Result("FAIL", "import", f"import {module} failed: {last}")]
    found = json.loads(out)
    took = found["seconds"]
    if found["pydantic"]:
        return [
            Result(
                "FAIL",
                "import",
                f"imports pydantic ({took:.2f} s): name request models under TYPE_CHECKING",
            )
        ]
    if took > budget:
        heavy = ", ".join(found["heavy"][:8])
        return [Result("FAIL", "import", f"{took:.2f} s, over {budget:g} s (loads {heavy})")]
    return [Result("PASS", "import", f"{took * 1000:.0f} ms, no pydantic (budget {budget:g} s)")]


async def list_models(h: Harness) -> list[Result]:
    from g4f_server.appkeys import CONFIG

    assert h.app is not None
    timeout = h.app[CONFIG].startup_timeout
    results = []
    for entry in h.entries:
        name = _label(h, "list_models", entry)
        if "list_models" not in entry.impls:
            results.append(Result("SKIP", name, "no list_models hook"))
            continue
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            models = await asyncio.wait_for(
                entry.call("list_models", ctx=h.context(entry)), timeout
            )
        except TimeoutError:
            results.append(Result("FAIL", name, f"no answer within {timeout:g} s"))
            continue
        except Exception as exc:
            results.append(Result("FAIL", name, f"raised {type(exc).__name__}: {exc}"))
            continue
        took = loop.time() - started
        bad = [m for m in models or [] if not isinstance(m, ModelInfo)]
        if not models or bad:
            results.append(Result("FAIL", name, "no models" if not models else "not ModelInfo"))
        else:
            kind = "fallback list" if isinstance(models, FallbackModels) else "models"
            results.append(Result("PASS", name, f"{len(models)} {kind} in {took:.2f} s"))
    return results


def _dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: a port bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def list_models_unreachable(h: Harness) -> list[Result]:
    from g4f_server.appkeys import CONFIG

    upstream = h.upstream
    if upstream is None:
        return [Result("SKIP", "list_models.unreachable", "needs an emulator (--emulator)")]
    assert h.app is not None
    timeout = h.app[CONFIG].startup_timeout
    results = []
    for entry in h.entries:
        name = _label(h, "list_models.unreachable", entry)
        if "list_models" not in entry.impls:
            results.append(Result("SKIP", name, "no list_models hook"))
            continue
        before = len(upstream.paths)
        await entry.call("list_models", ctx=h.context(entry))
        if len(upstream.paths) == before:
            results.append(Result("PASS", name, "a built-in list: no upstream call"))
            continue
        saved = dict(upstream.env(upstream.url))
        h.set_env(upstream.env(_dead_url()))
        # A plugin that read its settings once still reaches the emulator: it drops
        # every connection meanwhile, as an unreachable host would.
        dropping = upstream.fail("drop", times=10**6) if "drop" in upstream.supports else None
        try:
            models = await asyncio.wait_for(
                entry.call("list_models", ctx=h.context(entry)), timeout
            )
        except TimeoutError:
            results.append(Result("FAIL", name, f"no answer within {timeout:g} s"))
            continue
        except errors.G4FError as exc:
            results.append(Result("PASS", name, f"raised {type(exc).__name__} (no fallback list)"))
            continue
        except Exception as exc:
            results.append(
                Result("FAIL", name, f"raised {type(exc).__name__}, not a g4f_server.errors class")
            )
            continue
        finally:
            h.set_env(saved)
            if dropping in upstream.faults:
                upstream.faults.remove(dropping)
        if isinstance(models, FallbackModels) and models:
            results.append(Result("PASS", name, f"FallbackModels, {len(models)} models"))
        else:
            results.append(
                Result(
                    "FAIL",
                    name,
                    "returned a plain list: shown as working while its upstream is down"
                    " (return FallbackModels)",
                )
            )
    return results


# --- every wire protocol ---------------------------------------------------------------

# name -> (capability, path, body maker, stream, validator)
Request = tuple[str, str, Callable[[str], dict[str, Any]], bool, Callable[[wire.Answer], str]]
_USER = [{"role": "user", "content": wire.PROMPT}]


def _chat(m: str) -> dict[str, Any]:
    return {"model": m, "messages": _USER}


def _responses(m: str) -> dict[str, Any]:
    return {"model": m, "input": wire.PROMPT}


def _messages(m: str) -> dict[str, Any]:
    return {"model": m, "max_tokens": 256, "messages": _USER}


def _completions(m: str) -> dict[str, Any]:
    return {"model": m, "prompt": wire.PROMPT}


def _streamed(make: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    return lambda m: {**make(m), "stream": True}


def _images(m: str) -> dict[str, Any]:
    return {"model": m, "prompt": "a red square", "response_format": "b64_json"}


def _speech(m: str) -> dict[str, Any]:
    return {"model": m, "input": "Hello there.", "voice": "alloy"}


CHAT, RESPONSES, MESSAGES = "/v1/chat/completions", "/v1/responses", "/v1/messages"
COMPLETIONS = "/v1/completions"
PROTOCOLS: dict[str, Request] = {
    "chat.completions": ("chat", CHAT, _chat, False, wire.chat_completion),
    "chat.completions.stream": ("chat", CHAT, _streamed(_chat), True, wire.chat_stream),
    "responses": ("chat", RESPONSES, _responses, False, wire.response),
    "responses.stream": ("chat", RESPONSES, _streamed(_responses), True, wire.response_stream),
    "messages": ("chat", MESSAGES, _messages, False, wire.message),
    "messages.stream": ("chat", MESSAGES, _streamed(_messages), True, wire.message_stream),
    "completions": ("chat", COMPLETIONS, _completions, False, wire.completion),
    "completions.stream": (
        "chat", COMPLETIONS, _streamed(_completions), True, wire.completion_stream,
    ),
    "images": ("image", "/v1/images/generations", _images, False, wire.images),
    "speech": ("speech", "/v1/audio/speech", _speech, False, wire.speech),
}  # fmt: skip


def protocol(name: str) -> Check:
    capability, path, body, stream, validate = PROTOCOLS[name]

    async def check(h: Harness) -> list[Result]:
        assert h.http is not None
        results = []
        for entry in h.entries:
            label = _label(h, name, entry)
            if capability not in entry.capabilities:
                results.append(Result("SKIP", label, f"no {capability} capability"))
                continue
            model = _model(entry, capability)
            if model is None:
                results.append(Result("FAIL", label, f"no model with the {capability} capability"))
                continue
            try:
                answer = await wire.post(h.http, h.url + path, body(model), stream=stream)
                text = validate(answer)
            except (wire.Malformed, OSError, TimeoutError) as exc:
                results.append(Result("FAIL", label, f"{model}: {exc or type(exc).__name__}"))
                continue
            results.append(Result("PASS", label, f"{model}: {text[:40]!r}"))
        return results

    check.__name__ = name
    return check


async def transcription(h: Harness) -> list[Result]:
    assert h.http is not None
    results = []
    for entry in h.entries:
        label = _label(h, "transcription", entry)
        if "transcription" not in entry.capabilities:
            results.append(Result("SKIP", label, "no transcription capability"))
            continue
        model = _model(entry, "transcription") or entry.name
        try:
            text = wire.transcription(
                await wire.transcribe(h.http, h.url + "/v1/audio/transcriptions", model)
            )
        except (wire.Malformed, OSError) as exc:
            results.append(Result("FAIL", label, f"{model}: {exc}"))
            continue
        results.append(Result("PASS", label, f"{model}: {text[:40]!r}"))
    return results


async def embeddings(h: Harness) -> list[Result]:
    from g4f_server import hookspecs

    if not hasattr(hookspecs, "embed") and not hasattr(hookspecs, "create_embeddings"):
        return [Result("SKIP", "embeddings", "this kernel has no embeddings hook yet")]
    return [Result("SKIP", "embeddings", "not checked by this kit version")]


# --- faults (the emulator's fault hooks) -------------------------------------------------

# fault -> (kind, fault fields, the statuses a client must see, the error codes or types
# that name the documented class (None: any), why). A plugin may give its error a code of
# its own (ProviderAuthError(..., code="key_refused")): its type still says the class.
FAULTS: dict[str, tuple[str, dict[str, Any], set[int], set[str] | None, str]] = {
    "401": (
        "status", {"status": 401}, {401, 403}, {"provider_auth_required", "provider_error"},
        "ProviderAuthError",
    ),
    "429": ("status", {"status": 429}, {429}, {"rate_limit_exceeded"}, "ProviderRateLimitError"),
    "500": ("status", {"status": 500}, {502, 503}, None, "ProviderError"),
    "timeout": ("stall", {}, {504}, None, "ProviderTimeoutError"),
}  # fmt: skip


def _fault_ready(h: Harness, name: str, kind: str) -> tuple[Any, Result | None]:
    """The chat provider to inject into, or the SKIP saying why not."""
    if h.upstream is None:
        return None, Result("SKIP", name, "needs an emulator (--emulator)")
    if not h.target.faults:
        return None, Result("SKIP", name, "fault checks not asked for (--faults)")
    if kind not in h.upstream.supports:
        return None, Result("SKIP", name, f"the emulator has no {kind!r} fault")
    chat = [e for e in h.entries if "chat" in e.capabilities and _model(e, "chat")]
    if not chat:
        return None, Result("SKIP", name, "no chat provider")
    return chat[0], None


async def _answer_under_fault(
    h: Harness, entry: Any, kind: str, *, stream: bool = False, **fields: Any
) -> wire.Answer:
    """One chat request while the emulator injects ``kind`` (``fields`` as the kit's
    ``fail`` takes them), starting from a healthy provider (no cooldown left by an earlier
    check), with the fault cleared afterwards whatever happens."""
    assert h.upstream is not None and h.http is not None
    entry.health.succeeded()
    h.upstream.fail(kind, **{"times": 100, **fields})
    try:
        body: dict[str, Any] = {"model": _model(entry, "chat"), "messages": _USER}
        if stream:
            body["stream"] = True
        return await wire.post(h.http, h.url + "/v1/chat/completions", body, stream=stream)
    finally:
        h.upstream.clear()


def fault(key: str) -> Check:
    kind, fields, statuses, codes, documented = FAULTS[key]
    name = f"faults.{key}"

    async def check(h: Harness) -> list[Result]:
        entry, skipped = _fault_ready(h, name, kind)
        if skipped:
            return [skipped]
        answer = await _answer_under_fault(h, entry, kind, **fields)
        code = answer.error_code()
        detail = f"HTTP {answer.status} {code or ''}".strip()
        if code == "empty_answer":
            return [
                Result(
                    "FAIL",
                    name,
                    f"{detail}: the upstream's error became an empty answer (raise {documented})",
                )
            ]
        named = codes is None or code in codes or answer.error_type() in codes
        if answer.status not in statuses or not named:
            return [
                Result(
                    "FAIL",
                    name,
                    f"{detail}, expected {documented} ({'/'.join(map(str, sorted(statuses)))})",
                )
            ]
        return [Result("PASS", name, f"{detail} ({documented})")]

    check.__name__ = name
    return check


async def fault_cut(h: Harness) -> list[Result]:
    name = "faults.cut"
    entry, skipped = _fault_ready(h, name, "cut")
    if skipped:
        return [skipped]
    answer = await _answer_under_fault(h, entry, "cut", stream=True, after=1)
    error = wire.stream_error(answer)
    if error is None:
        return [
            Result(
                "FAIL",
                name,
                "a stream cut mid-answer ended as a success"
                " (raise ProviderError when the upstream's end marker is missing)",
            )
        ]
    message = error.get("message") if isinstance(error, dict) else str(error)
    return [Result("PASS", name, f"the stream ended with an error: {str(message)[:60]!r}")]


async def empty_answer(h: Harness) -> list[Result]:
    name = "empty_answer"
    entry, skipped = _fault_ready(h, name, "empty")
    if skipped:
        return [skipped]
    answer = await _answer_under_fault(h, entry, "empty")
    if 200 <= answer.status < 300:
        return [
            Result(
                "FAIL",
                name,
                f"an empty upstream answer became HTTP {answer.status} {str(answer.body)[:80]}",
            )
        ]
    return [Result("PASS", name, f"HTTP {answer.status} {answer.error_code()}")]


async def hangup(h: Harness) -> list[Result]:
    name = "hangup"
    entry, skipped = _fault_ready(h, name, "hangup")
    if skipped:
        return [skipped]
    assert h.upstream is not None and h.http is not None
    h.upstream.fail("hangup", after=1, times=1)
    body = {"model": _model(entry, "chat"), "messages": _USER, "stream": True}
    try:
        resp = await h.http.post(h.url + "/v1/chat/completions", json=body)
        try:
            if resp.status != 200:
                return [Result("FAIL", name, f"HTTP {resp.status} before the hang-up")]
            async for line in resp.content:  # up to the first part of the answer
                if b'"content"' in line or (b"delta" in line and b"text" in line):
                    break
        finally:
            resp.close()  # the client hangs up: the connection is closed, not drained
        took = await h.upstream.closed(HANGUP_LIMIT)
    finally:
        h.upstream.clear()
    if took is None:
        return [
            Result(
                "FAIL",
                name,
                f"the upstream request was still open {HANGUP_LIMIT:g} s after the client"
                " hung up (close it in finally:)",
            )
        ]
    return [Result("PASS", name, f"upstream request closed {took * 1000:.0f} ms after the hang-up")]


async def secrets(h: Harness) -> list[Result]:
    """Last: it reads what every earlier check logged, after one more chat and one
    failing one (errors are where keys leak)."""
    assert h.http is not None
    chat = [e for e in h.entries if "chat" in e.capabilities and _model(e, "chat")]
    if chat:
        body = {"model": _model(chat[0], "chat"), "messages": _USER}
        await wire.post(h.http, h.url + "/v1/chat/completions", body)
        if h.upstream is not None and "status" in h.upstream.supports:
            h.upstream.fail("status", status=401, times=100)
            try:
                await wire.post(h.http, h.url + "/v1/chat/completions", body)
            finally:
                h.upstream.clear()
    known = h.secrets()
    if not known:
        return [
            Result(
                "SKIP",
                "secrets",
                "no secret known (an emulator's secrets, or *_KEY/*_TOKEN variables)",
            )
        ]
    logs = h.logs()
    leaked = [s for s in known if s in logs]
    if leaked:
        shown = ", ".join(f"{s[:3]}...({len(s)} chars)" for s in leaked)
        return [Result("FAIL", "secrets", f"logged: {shown}")]
    return [
        Result(
            "PASS",
            "secrets",
            f"{len(known)} secret(s) in none of {logs.count(chr(10)) + 1} log lines",
        )
    ]


CHECKS: dict[str, Check] = {
    "provider_info": provider_info,
    "import": cheap_import,
    "list_models": list_models,
    "list_models.unreachable": list_models_unreachable,
    **{name: protocol(name) for name in PROTOCOLS},
    "transcription": transcription,
    "embeddings": embeddings,
    **{f"faults.{key}": fault(key) for key in FAULTS},
    "faults.cut": fault_cut,
    "empty_answer": empty_answer,
    "hangup": hangup,
    "secrets": secrets,
}


async def run(h: Harness, names: list[str] | None = None) -> list[Result]:
    """Every check (or those named), in order, on one running harness."""
    results: list[Result] = []
    for name, check in CHECKS.items():
        if names is None or name in names:
            try:
                results += await check(h)
            except Exception as exc:
                results.append(
                    Result("FAIL", name, f"the check crashed: {type(exc).__name__}: {exc}")
                )
    return results
