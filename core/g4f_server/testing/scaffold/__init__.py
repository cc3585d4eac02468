"""``g4f-server new-provider NAME``: write a provider package that installs, passes its
own tests and the conformance suite out of the box.

The files are ``string.Template`` texts in ``template/`` (package data of the kernel);
``package/`` becomes the import package. Stdlib only: the command stays cheap.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from g4f_server import __version__

TEMPLATE = Path(__file__).with_name("template")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")


def names(name: str) -> dict[str, str]:
    """Every spelling of NAME the files use (``my-llm``: ``g4f-server-my-llm``,
    ``g4f_server_my_llm``, ``MY_LLM_``, ``MyLlm``)."""
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r}: start with a letter; lower-case letters, digits, '-' and '_' only"
        )
    snake = name.replace("-", "_")
    major, minor, *_ = __version__.split(".")
    return {
        "name": snake,
        "dist": f"g4f-server-{name.replace('_', '-')}",
        "package": f"g4f_server_{snake}",
        "env": snake.upper(),
        "provider": "".join(part.capitalize() for part in snake.split("_")),
        "label": " ".join(part.capitalize() for part in snake.split("_")),
        "default_model": f"{snake.replace('_', '-')}-1",
        "kernel_minor": f"{major}.{minor}",
        "kernel_next": f"{major}.{int(minor) + 1}" if major == "0" else f"{int(major) + 1}",
    }


def write(name: str, directory: Path) -> list[Path]:
    """Write the package into ``directory/g4f-server-NAME``; return the files written.
    Refuses to write over an existing directory."""
    values = names(name)
    root = directory / values["dist"]
    if root.exists():
        raise FileExistsError(f"{root} exists")
    written = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")  # drop .tmpl
        parts = [values["package"] if p == "package" else p for p in relative.parts]
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(source.read_text()).substitute(values))
        written.append(target)
    return written
