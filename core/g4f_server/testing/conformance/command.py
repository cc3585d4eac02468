"""``g4f-server conformance``: find the installed plugin and its emulator, run the checks
and print one line per result."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from g4f_server.hookspecs import PROJECT
from g4f_server.testing.conformance.checks import CHECKS
from g4f_server.testing.conformance.checks import run as run_checks
from g4f_server.testing.conformance.harness import Harness, Result, Target


def plugin(name: str) -> tuple[Any, str]:
    """The plugin an entry point of the ``g4f_server`` group names (or a module name)."""
    for ep in entry_points(group=PROJECT):
        if ep.name.lower() == name.lower():
            module = ep.load()
            return module, ep.value.split(":")[0]
    try:
        return importlib.import_module(name), name
    except ImportError:
        installed = ", ".join(sorted(ep.name for ep in entry_points(group=PROJECT))) or "none"
        raise LookupError(
            f"no provider plugin {name!r} installed (installed: {installed})"
        ) from None


def emulator(spec: str) -> Any:
    """An instance of the ``Upstream`` subclass in a file or module (``FILE:Class``)."""
    from g4f_server.testing.upstream import Upstream

    where, _, cls_name = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    path = Path(where)
    if path.suffix == ".py":
        if not path.exists():
            raise ValueError(f"--emulator: {path} does not exist")
        # Its own directory first, as pytest does for a test file: `import emulator`
        # style siblings resolve.
        sys.path.insert(0, str(path.resolve().parent))
        spec_ = importlib.util.spec_from_file_location(f"g4f_conformance_{path.stem}", path)
        assert spec_ and spec_.loader
        module = importlib.util.module_from_spec(spec_)
        sys.modules[spec_.name] = module
        spec_.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if cls_name:
        return getattr(module, cls_name)()
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Upstream)
        and obj is not Upstream
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise ValueError(
            f"--emulator: {spec} holds {len(found)} Upstream subclasses; name one with :Class"
        )
    return found[0]()


def target(
    name: str, emulator_spec: str | None, *, faults: bool, upstreams: list[str] | None
) -> Target:
    module, module_name = plugin(name)
    config: dict[str, Any] = {}
    if upstreams:
        config["upstreams"] = upstreams
    return Target(
        plugin=module,
        upstream=emulator(emulator_spec) if emulator_spec else None,
        config=config,
        module=module_name,
        faults=faults,
    )


async def run(target: Target, names: list[str] | None, echo: Callable[[str], None]) -> bool:
    """Run and print; True if a check failed."""
    from g4f_server.logs import configure_logging

    unknown = sorted(set(names or ()) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown}: {', '.join(CHECKS)}")
    # Debug level: the secrets check reads every line a provider could write. The lines
    # are kept, not shown: the output is the results (a root handler of our own keeps
    # logging.basicConfig from adding one on stderr).
    logging.getLogger().addHandler(logging.NullHandler())
    configure_logging(debug=True, stream=_Quiet())
    where = f"emulator {type(target.upstream).__name__}" if target.upstream else "its own settings"
    echo(f"conformance of {target.module} against {where}")
    # A gateway per check, as in the pytest suite: a check leaves state behind (a
    # plugin's memory of a refused key, a cooldown after a 429) that would decide the
    # next one. One emulator for all, on one URL: a plugin may read its settings once
    # per process. The log lines are shared: the secrets check reads them all.
    lines: list[str] = []
    results: list[Result] = []
    upstream = target.upstream
    started = upstream is not None and not upstream.url
    if started:
        await upstream.start()
    try:
        for name in names or list(CHECKS):
            async with Harness(target, lines=lines) as harness:
                results += await run_checks(harness, [name])
    finally:
        if started:
            await upstream.stop()
    for result in results:
        echo(str(result))
    counts = {s: sum(r.status == s for r in results) for s in ("PASS", "FAIL", "SKIP")}
    echo(", ".join(f"{n} {s.lower()}" for s, n in counts.items()))
    return counts["FAIL"] > 0


class _Quiet:
    """Where the gateway's log lines go during the run: nowhere (the checks print the
    results; the lines are read by the secrets check through the harness)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
