"""The ``g4f-server`` command. Heavy imports stay inside the commands so --help is fast."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from g4f_server.config import env_var

# Plain click help, not rich's boxed tables: rich truncates long option names at 80
# columns ("--allow-request-pr…") and reads "[env: G4F_HOST]" in a help text as markup.
# -h as well as --help, on every command: click hands the setting down to subcommands.
HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="OpenAI-compatible gateway.",
    rich_markup_mode=None,
    context_settings=HELP,
    # Plain tracebacks: readable in logs, and no frame's locals (a key, a cookie) printed.
    pretty_exceptions_enable=False,
)


def _opt(setting: str | None, text: str, *decls: str) -> Any:
    """An option whose help names the environment variable of its setting. The variable
    is read by ``AppConfig.load``, not by click, so precedence and errors stay config.py's;
    ``setting=None`` is an option with no setting of its own (``--bind``)."""
    if setting is not None:
        text = f"{text} [env: {env_var(setting)}]"
    return typer.Option(*decls, help=text)


def _print_version(value: bool) -> None:
    if value:
        from g4f_server import __version__

        typer.echo(f"g4f-server {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """OpenAI-compatible gateway."""


Plugins = Annotated[
    list[str] | None,
    _opt("load_plugins", "Only load these plugins (comma-separated or repeated)"),
]
Disabled = Annotated[list[str] | None, _opt("disabled_plugins", "Never load these plugins")]


def _list(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _config(**flags: Any) -> Any:
    from g4f_server.config import AppConfig, ConfigError, unknown_variables
    from g4f_server.controls.wiring import check
    from g4f_server.logs import configure_logging, get_logger

    try:
        config = AppConfig.load(**flags)
        check(config)
    except ConfigError as exc:  # a bad flag or G4F_* variable: say which, no traceback
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(debug=config.debug, json_logs=config.json_logs)
    for variable, closest in unknown_variables():  # a typo would be ignored silently
        get_logger().warning("unknown_variable", variable=variable, did_you_mean=closest)
    return config


Text = str | None
Flag = bool | None
Names = list[str] | None


def api(
    host: Annotated[Text, _opt("host", "Address to bind [127.0.0.1]")] = None,
    port: Annotated[int | None, _opt("port", "Port [1337]", "--port", "-p")] = None,
    bind: Annotated[Text, _opt(None, "HOST:PORT, as gpt4free's --bind")] = None,
    debug: Annotated[Flag, _opt("debug", "Debug logging", "--debug", "-d")] = None,
    json_logs: Annotated[Flag, _opt("json_logs", "Log JSON lines", "--json-logs")] = None,
    g4f_api_key: Annotated[Text, _opt("api_key", "Require this API key")] = None,
    provider: Annotated[Text, _opt("provider", "Default provider")] = None,
    model: Annotated[Text, _opt("model", "Default model")] = None,
    image_provider: Annotated[Text, _opt("image_provider", "Default image provider")] = None,
    image_model: Annotated[Text, _opt("image_model", "Default image model")] = None,
    proxy: Annotated[Text, _opt("proxy", "Proxy for upstream calls")] = None,
    allow_request_proxy: Annotated[
        Flag, _opt("allow_request_proxy", "Honour the 'proxy' field of requests (SSRF risk)")
    ] = None,
    timeout: Annotated[float | None, _opt("timeout", "Upstream timeout, seconds [300]")] = None,
    stream_timeout: Annotated[
        float | None, _opt("stream_timeout", "Max gap between chunks, seconds [120]")
    ] = None,
    ignored_providers: Annotated[Names, _opt("ignored_providers", "Providers not to use")] = None,
    priority: Annotated[Names, _opt("priority", "Providers to try first, in order")] = None,
    load_plugins: Plugins = None,
    disabled_plugins: Disabled = None,
    workers: Annotated[int | None, _opt("workers", "Worker processes [1]")] = None,
    data_dir: Annotated[Path | None, _opt("data_dir", "Media, cookies and conversations")] = None,
    public_url: Annotated[Text, _opt("public_url", "External base URL for /media links")] = None,
    cookie_max_upload_domains: Annotated[
        int | None, _opt("cookie_max_upload_domains", "Cookie domains one upload may name [100]")
    ] = None,
    cookie_max_domains: Annotated[
        int | None, _opt("cookie_max_domains", "Cookie domains stored in all [500]")
    ] = None,
    state_url: Annotated[
        Text, _opt("state_url", "Shared state on Redis, redis:// or rediss://")
    ] = None,
    gui: Annotated[Flag, _opt("gui", "Serve the chat page at /", "--gui")] = None,
    config_file: Annotated[
        Path | None, _opt("config", "TOML config file: models, keys, limits", "--config")
    ] = None,
    trusted_proxies: Annotated[
        Names, _opt("trusted_proxies", "Proxies (IPs/CIDRs) whose X-Forwarded-For is believed")
    ] = None,
    emulate: Annotated[
        Names, _opt("emulate", "Emulate for models without them: tools, json")
    ] = None,
    upstreams: Annotated[
        Names,
        _opt("upstreams", "OpenAI-compatible upstreams to turn on, e.g. groq,gemini,ollama"),
    ] = None,
    cache_ttl: Annotated[
        float | None, _opt("cache_ttl", "Response cache: seconds an answer is kept [0: off]")
    ] = None,
    probe_interval: Annotated[
        float | None,
        _opt("probe_interval", "Check each provider every SECONDS (spends quota) [0: off]"),
    ] = None,
    metrics: Annotated[Flag, _opt("metrics", "Serve GET /metrics", "--metrics")] = None,
    metrics_public: Annotated[
        Flag, _opt("metrics_public", "/metrics without the API key", "--metrics-public")
    ] = None,
    cors_origins: Annotated[
        Names, _opt("cors_origins", "Origins browsers may call from ('*': any); default: docs")
    ] = None,
    demo: Annotated[
        Flag,
        _opt(
            "demo",
            "Public demo: the chat page; cookie routes, per-request provider keys and "
            "proxy refused; a per-client request limit (docs/gui.md)",
            "--demo",
        ),
    ] = None,
) -> None:
    """Run the OpenAI-compatible API server."""
    from g4f_server.api import serve

    if bind:
        bind_host, _, bind_port = bind.rpartition(":")
        host = host or bind_host or None
        port = port or int(bind_port)
    config = _config(
        host=host,
        port=port,
        debug=debug,
        json_logs=json_logs,
        api_key=g4f_api_key,
        provider=provider,
        model=model,
        image_provider=image_provider,
        image_model=image_model,
        proxy=proxy,
        allow_request_proxy=allow_request_proxy,
        timeout=timeout,
        stream_timeout=stream_timeout,
        ignored_providers=_list(ignored_providers),
        priority=_list(priority),
        load_plugins=_list(load_plugins),
        disabled_plugins=_list(disabled_plugins),
        workers=workers,
        data_dir=data_dir,
        public_url=public_url,
        cookie_max_upload_domains=cookie_max_upload_domains,
        cookie_max_domains=cookie_max_domains,
        state_url=state_url,
        gui=gui,
        config=config_file,
        trusted_proxies=_list(trusted_proxies),
        cors_origins=_list(cors_origins),
        demo=demo,
        metrics=metrics,
        metrics_public=metrics_public,
        cache_ttl=cache_ttl,
        probe_interval=probe_interval,
        emulate=_list(emulate),
        upstreams=_list(upstreams),
    )
    serve(config)


# The api parameters that are not named after their setting (bind has none).
_API_SETTING = {"g4f_api_key": "api_key", "config_file": "config", "bind": None}


def _unflagged_settings() -> str:
    """``api --help``'s epilog: every setting without a flag, by its variable and its key
    in the config file, with its default (one a line: click keeps a ``\\b`` paragraph)."""
    import dataclasses
    import inspect

    from g4f_server.config import AppConfig

    flagged = {_API_SETTING.get(name, name) for name in inspect.signature(api).parameters}
    lines = []
    for spec in dataclasses.fields(AppConfig):
        if spec.name in flagged:
            continue
        if spec.default is not dataclasses.MISSING:
            default = "unset" if spec.default is None else json.dumps(spec.default)
        else:  # a table or a list
            default = "empty"
        lines.append(f"{env_var(spec.name):<27} {spec.name} [{default}]")
    head = "Settings without a flag (environment variable, config file key, default):"
    return head + "\n\n\b\n" + "\n".join(lines)


app.command(epilog=_unflagged_settings())(api)


def _registry(
    load_plugins: list[str] | None, disabled_plugins: list[str] | None, check: bool = False
) -> Any:
    """The registry of the installed plugins, models listed (and, with ``check``, every
    provider probed: ``(registry, {name: failure or None})``), without serving HTTP."""
    from g4f_server.logs import configure_logging

    configure_logging()
    config = _config(load_plugins=_list(load_plugins), disabled_plugins=_list(disabled_plugins))
    return asyncio.run(_inspect(config, check))


async def _inspect(config: Any, check: bool = False) -> Any:
    """Start the app without serving HTTP, to read its registry (and probe it)."""
    from aiohttp import web

    from g4f_server.app import create_app
    from g4f_server.config import ConfigError
    from g4f_server.providers.probes import PROBER
    from g4f_server.providers.registry import REGISTRY

    try:
        application = create_app(config)
    except ConfigError as exc:  # a provider refused the settings: say why, no traceback
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    runner = web.AppRunner(application)
    await runner.setup()
    try:
        if check:
            return application[REGISTRY], await application[PROBER].check_all()
        return application[REGISTRY]
    finally:
        await runner.cleanup()


@app.command()
def providers(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Probe every provider now (a real request each) and print a table"
        ),
    ] = False,
    load_plugins: Plugins = None,
    disabled_plugins: Disabled = None,
) -> None:
    """List installed providers: models (every kind, as `models` lists them) and status."""
    from g4f_server.providers.registry import STATUSES
    from g4f_server.web.routes.providers import failed_entry, provider_entry

    if check:
        registry, results = _registry(load_plugins, disabled_plugins, check=True)
        _check_table(registry, results, as_json)
        return
    registry = _registry(load_plugins, disabled_plugins)
    if as_json:
        rows = [provider_entry(e) for e in registry.ordered]
        rows += [failed_entry(f) for f in registry.failed]
        typer.echo(json.dumps(rows, indent=2))
        return
    for e in registry.ordered:
        state = e.status_text() + (f": {e.error}" if e.error else "")
        models = [m for m in e.models if not m.voice_of]  # voices are not models
        kinds = ", ".join(f"{n} {kind}" for kind, n in _kinds(models).items())
        typer.echo(f"{e.name:<20} {len(models):>4} models ({kinds or 'none'})  {state}")
    for f in registry.failed:
        typer.echo(f"{f.name:<20} {0:>4} models  {STATUSES['down']}: {f.error}")


def _check_table(registry: Any, results: dict[str, Any], as_json: bool) -> None:
    """``providers --check``: one row per provider with what its probe said. Exits 1 when
    no provider passed (scripts can ask "does anything work?")."""
    rows = []
    for e in registry.ordered:
        failure = results.get(e.name)
        check = "skip" if e.name not in results else ("FAIL" if failure else "pass")
        rows.append(
            {
                "provider": e.name,
                "check": check,
                "status": e.status,
                "latency_ms": e.vitals.latency_p50_ms() if check == "pass" else None,
                "error": f"{failure.code}: {failure.message}" if failure else None,
            }
        )
    for f in registry.failed:
        rows.append(
            {"provider": f.name, "check": "skip", "status": "down", "latency_ms": None,
             "error": f.error}
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        typer.echo(f"{'PROVIDER':<20} {'CHECK':<5} {'STATUS':<11} {'LATENCY':>9}  ERROR")
        for row in rows:
            latency = f"{row['latency_ms']:.0f} ms" if row["latency_ms"] is not None else "-"
            typer.echo(
                f"{row['provider']:<20} {row['check']:<5} {row['status']:<11} {latency:>9}  "
                f"{row['error'] or ''}".rstrip()
            )
    if not any(row["check"] == "pass" for row in rows):
        raise typer.Exit(1)


def _kinds(models: list[Any]) -> dict[str, int]:
    """How many models have each capability that a route serves (chat, image, ...); a
    model with several counts under each."""
    from g4f_server.capabilities import HOOK_CAPABILITY

    counts = {
        kind: sum(kind in m.capabilities for m in models) for kind in HOOK_CAPABILITY.values()
    }
    return {kind: n for kind, n in counts.items() if n}


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    load_plugins: Plugins = None,
    disabled_plugins: Disabled = None,
) -> None:
    """List the models of every installed provider."""
    from g4f_server.web.routes.models import model_entry

    registry = _registry(load_plugins, disabled_plugins)
    rows = [model_entry(m, e) for e in registry.ordered for m in e.models if not m.voice_of]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['providers'][0]:<16} {row['id']:<32} {','.join(row['capabilities'])}")


@app.command("new-provider")
def new_provider(
    name: Annotated[str, typer.Argument(help="The provider's name, e.g. parrot")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write g4f-server-NAME/ [.]")
    ] = Path("."),
) -> None:
    """Write a provider package: hooks, an emulated upstream, tests, the conformance suite."""
    from g4f_server.testing import scaffold

    try:
        written = scaffold.write(name, directory)
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    root = written[0].parent
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f'\nNext:\n  cd {root}\n  pip install -e ".[test]"\n  pytest')


@app.command()
def conformance(
    provider: Annotated[str, typer.Argument(help="The plugin's entry point name (or module)")],
    emulator: Annotated[
        str | None,
        typer.Option(
            "--emulator",
            help="The plugin's emulated upstream: a file (tests/emulator.py) or module, "
            "with one g4f_server.testing.upstream.Upstream subclass (or FILE:Class)",
        ),
    ] = None,
    faults: Annotated[
        bool, typer.Option("--faults", help="Also check upstream failures (needs --emulator)")
    ] = False,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Only these checks (repeatable)")
    ] = None,
    upstreams: Annotated[
        Names, _opt("upstreams", "OpenAI-compatible upstreams to turn on, e.g. groq")
    ] = None,
) -> None:
    """Check an installed provider against the plugin contract, end to end: PASS/FAIL/SKIP
    per check; exit code 1 on a failure."""
    from g4f_server.testing.conformance import command

    try:
        target = command.target(provider, emulator, faults=faults, upstreams=_list(upstreams))
    except (LookupError, ImportError, ValueError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    failed = asyncio.run(command.run(target, check, typer.echo))
    raise typer.Exit(1 if failed else 0)


keys_app = typer.Typer(
    help="API keys for the config file's [keys] table.",
    rich_markup_mode=None,
    context_settings=HELP,
)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(name: Annotated[str, typer.Argument(help="The key's name (logs, limits)")]) -> None:
    """Print a fresh random key and the lines to paste into the config file."""
    from g4f_server.controls.apikeys import key_hash, new_key

    if not name.replace("-", "").replace("_", "").isalnum():
        typer.echo("Error: NAME may hold letters, digits, '-' and '_' only", err=True)
        raise typer.Exit(2)
    key = new_key()
    typer.echo(f"Key (shown once; give it to the client): {key}\n")
    typer.echo("Paste into the config file:\n")
    typer.echo(f'[keys.{name}]\nsha256 = "{key_hash(key)}"')
    typer.echo('# models = ["gpt-4o*"]   # optional: the models this key may use')
    typer.echo("# rpm = 60   # optional: requests per minute, tpm, concurrency")


def main() -> None:
    # Start-up allocates much and frees little, so collections during the imports are
    # wasted (~5% of a cold start). `api` turns the collector back on once it is serving
    # (api.py); the other commands are short-lived.
    gc.disable()
    if sys.argv[1:2] == ["api"] and (flags := _api_flags(sys.argv[2:])) is not None:
        try:
            api(**flags)
        except typer.Exit as done:  # as typer's own call would end it: no traceback
            raise SystemExit(done.exit_code) from None
        return
    app()


def _api_flags(args: list[str]) -> dict[str, Any] | None:
    """``api``'s options as typer's own command parses them, without typer's conversion.

    Since 0.29 typer converts every option's value through a pydantic ``TypeAdapter``,
    which maps pydantic's compiled core into the server before it serves (+8.6 MB idle,
    +0.07 s cold start; the idle server needs no pydantic, docs/performance.md). The
    values stay strings and ``AppConfig.load`` converts and checks them, as it does the
    G4F_* variables, with the same messages. ``None`` (typer does it all, pydantic and
    rich included) for ``--help``/``-h``, an unknown option or a missing value: the help
    or typer's own error is printed and the process ends without serving."""
    import inspect

    import typer.main

    command = typer.main.get_command(app).commands["api"]  # type: ignore[attr-defined]
    try:
        opts, extra, _ = command.make_parser(typer.Context(command)).parse_args(args)
    except typer.TyperException:  # click's UsageError: say it as typer does
        return None
    if extra or not opts.keys() <= inspect.signature(api).parameters.keys():  # "help"
        return None
    return opts


if __name__ == "__main__":  # `python -m g4f_server.cli api`, as the contract's Docker line
    main()
