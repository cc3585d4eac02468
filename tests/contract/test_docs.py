"""Docs move with the code: every hook is documented with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

from g4f_server import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def hook_signatures() -> list[str]:
    out = []
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(fn, f"{hookspecs.PROJECT}_spec"):
            continue
        prefix = "async def " if inspect.iscoroutinefunction(fn) else "def "
        out.append(prefix + name + str(inspect.signature(fn)).replace("'", ""))
    return out


def test_every_hookspec_is_documented_with_its_signature() -> None:
    text = (DOCS / "plugins.md").read_text()
    signatures = hook_signatures()
    assert len(signatures) >= 6
    missing = [sig for sig in signatures if f"### `{sig}`" not in text]
    assert not missing, f"document these hooks in docs/plugins.md: {missing}"


def test_every_config_field_is_documented() -> None:
    from g4f_server.config import AppConfig

    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in AppConfig.field_names() if f"`G4F_{name.upper()}`" not in text]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_every_route_is_in_the_api_reference(tmp_path: Path) -> None:
    from g4f_server.app import create_app
    from g4f_server.config import AppConfig

    app = create_app(AppConfig(data_dir=tmp_path), plugins=[], load_entrypoints=False)
    text = (DOCS / "api.md").read_text()
    paths = {r.canonical.replace("{model:.+}", "{model}") for r in app.router.resources()}
    missing = sorted(p for p in paths if f"`{p}`" not in text and f" {p}`" not in text)
    assert not missing, f"document these routes in docs/api.md: {missing}"


def test_every_hookspec_is_implemented_by_a_kernel_test_provider() -> None:
    """Each hook is exercised by a provider defined in the kernel's own tests."""
    from tests import fake_providers as providers
    from tests import media_providers

    names = {sig.split("(")[0].split()[-1] for sig in hook_signatures()}
    implemented = set()
    for module in (providers, media_providers):
        for obj in vars(module).values():
            for name in names:
                if hasattr(getattr(obj, name, None), f"{hookspecs.PROJECT}_impl"):
                    implemented.add(name)
    assert implemented == names, f"no test provider implements: {sorted(names - implemented)}"
