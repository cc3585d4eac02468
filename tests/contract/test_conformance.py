"""The conformance checks can fail: the scaffold's provider passes every one, and each
known defect, added to a copy of it, makes exactly its own check fail.

Each defect is real code appended to the generated module (a later ``def`` of a hook
replaces the first; the original stays reachable through ``_ORIGINAL``), imported from a
temporary directory under a name of its own, against the scaffold's own emulator."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from g4f_server.testing import scaffold
from g4f_server.testing.conformance import Target
from g4f_server.testing.conformance.checks import CHECKS, run
from g4f_server.testing.conformance.harness import Harness

_ORIGINAL = "\n_ORIGINAL = {'chat': chat, 'list_models': list_models, '_error': _error}\n"

DEFECTS: dict[str, str] = {
    # An upstream 500 swallowed: the stream just ends, with no text.
    "faults.500": """
def _error(status, headers, text):
    if status >= 500:
        return None
    return _ORIGINAL['_error'](status, headers, text)

@hookimpl
async def chat(request, ctx):
    body = {"model": request.model, "messages": request.message_dicts(), "stream": True}
    url = f"{_base_url()}/chat/completions"
    async with ctx.http.post(url, headers=_headers(), json=body) as resp:
        if resp.status >= 500:
            return
    async for item in _ORIGINAL['chat'](request, ctx):
        yield item
""",
    # Every upstream failure is "a provider error": a 429 loses its meaning (and Retry-After).
    "faults.429": """
def _error(status, headers, text):
    if status == 429:
        return errors.ProviderError(f"upstream said {status}")
    return _ORIGINAL['_error'](status, headers, text)
""",
    # The upstream is read by a task of its own, which nobody stops when the client goes.
    "hangup": """
import asyncio
_TASKS = set()

@hookimpl
async def chat(request, ctx):
    queue = asyncio.Queue()

    async def pump():
        try:
            async for item in _ORIGINAL['chat'](request, ctx):
                await queue.put(item)
        except Exception as exc:
            await queue.put(exc)
        await queue.put(None)

    task = asyncio.ensure_future(pump())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    while (item := await queue.get()) is not None:
        if isinstance(item, Exception):
            raise item
        yield item
""",
    # The request models imported at module level: pydantic in every server's start-up.
    "import": "\nfrom g4f_server.requests import ChatRequest as _Eager  # noqa\n",
    # Unreachable upstream, but a plain list: shown as working.
    "list_models.unreachable": """
@hookimpl
async def list_models(ctx):
    return list(await _ORIGINAL['list_models'](ctx))
""",
    # A cut stream taken for a finished one.
    "faults.cut": """
@hookimpl
async def chat(request, ctx):
    try:
        async for item in _ORIGINAL['chat'](request, ctx):
            yield item
    except errors.ProviderError as exc:
        if "end marker" not in str(exc) and "Payload" not in str(exc):
            raise
""",
    # An empty upstream answer dressed up as text.
    "empty_answer": """
@hookimpl
async def chat(request, ctx):
    said = False
    async for item in _ORIGINAL['chat'](request, ctx):
        batch = item if isinstance(item, list) else [item]
        said = said or any(isinstance(e, events.TextDelta) for e in batch)
        if isinstance(item, events.Finish) and not said:
            yield events.TextDelta("(no answer)")
        yield item
""",
    # The key in a log line.
    "secrets": """
@hookimpl
async def chat(request, ctx):
    ctx.log.info("calling upstream", headers=_headers())
    async for item in _ORIGINAL['chat'](request, ctx):
        yield item
""",
    # A default model it does not list.
    "provider_info": """
@hookimpl
def provider_info():
    from dataclasses import replace
    return replace(_ORIGINAL_INFO(), default_model="no-such-model")
""",
}


def _make(tmp: Path, name: str, defect: str) -> tuple[Any, Any]:
    """The scaffold's provider as ``g4f_server_NAME`` with ``defect`` appended, and its
    emulator."""
    files = scaffold.write(name, tmp)
    root = files[0].parent
    module_file = root / f"g4f_server_{name}" / "__init__.py"
    extra = _ORIGINAL + ("_ORIGINAL_INFO = provider_info\n" if "_ORIGINAL_INFO" in defect else "")
    module_file.write_text(module_file.read_text() + extra + defect)
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(root / "tests"))
    try:
        module = importlib.import_module(f"g4f_server_{name}")
        spec = importlib.util.spec_from_file_location(
            f"emulator_{name}", root / "tests" / "emulator.py"
        )
        assert spec and spec.loader
        emu = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(emu)
    finally:
        sys.path.remove(str(root / "tests"))
    return module, emu.Emulator()


@pytest.fixture
def pythonpath(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The import check runs in a subprocess: it finds the copy through PYTHONPATH."""

    def add(path: Path) -> None:
        monkeypatch.setenv("PYTHONPATH", f"{path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")

    return add


async def _failed(tmp_path: Path, name: str, defect: str, pythonpath: Any) -> set[str]:
    module, upstream = _make(tmp_path, name, defect)
    pythonpath(tmp_path / f"g4f-server-{name.replace('_', '-')}")
    try:
        async with Harness(Target(plugin=module, upstream=upstream)) as harness:
            results = await run(harness)
    finally:
        sys.path[:] = [p for p in sys.path if str(tmp_path) not in p]
        sys.modules.pop(module.__name__, None)
    names = [r.name for r in results]
    assert names == [n for n in CHECKS if n in names] and len(names) == len(CHECKS)
    return {r.name for r in results if r.status == "FAIL"}


async def test_the_scaffold_passes_every_check(tmp_path: Path, pythonpath: Any) -> None:
    assert await _failed(tmp_path, "sound", "", pythonpath) == set()


@pytest.mark.parametrize("check", list(DEFECTS))
async def test_a_defect_fails_exactly_its_check(
    tmp_path: Path, pythonpath: Any, check: str
) -> None:
    name = "defect_" + check.replace(".", "_")
    assert await _failed(tmp_path, name, DEFECTS[check], pythonpath) == {check}
