"""The `hybrid-router` command line: thin over the core (parse, call, print)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from . import __version__, home, render, store
from .config import ConfigError, LoadedConfig, default_config_path, load_config
from .records import decision_row
from .routing import decide
from .signals import Signals, signals_from_prompt, signals_from_request
from .stats import PeriodError, compute_stats, parse_since

SAMPLE_PROMPTS = (
    "list the files in src/ and show me where the config is loaded",
    "write unit tests for the date parser in utils/dates.py",
    "explain how the request pipeline works, from the router to the handlers",
    "review the login handler for SQL injection and leaked credentials",
    "production is down after the deploy: users are seeing data loss, what do we roll back?",
    "search the web for the latest httpx2 release notes",
    "rename the variable tmp to buffer in parser.py",
)


class State:
    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._loaded: LoadedConfig | None = None

    def loaded(self) -> LoadedConfig:
        if self._loaded is None:
            try:
                self._loaded = load_config(self.config_file)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._loaded


def open_log() -> sqlite3.Connection:
    path = home.database_path()
    try:
        return store.connect(path)
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"cannot open the decision log {path}: {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hybrid-router")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HYBRID_ROUTER_CONFIG",
    help="Routing config to use instead of <home>/router-config.json.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Route Claude Code work to free local and cloud models; keep Anthropic for what needs it.

    Everything the tool writes lives in ~/.hybrid-router, or in $HYBRID_ROUTER_HOME when set.
    """
    ctx.obj = State(config_file)


# --- route -------------------------------------------------------------------------------------


def _read_request(source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A Messages request body from a file or stdin; a captured {headers, body} pair also works."""
    name = "<stdin>" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{name}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{name}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{name}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{name}: expected a JSON object (a Messages request body)")
    if isinstance(data.get("body"), dict):
        headers = data.get("headers")
        headers = {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}
        return data["body"], headers
    if not isinstance(data.get("messages"), list):
        raise click.ClickException(
            f"{name}: expected a Messages request body with a 'messages' array"
        )
    return data, {}


@cli.command()
@click.argument("prompt", required=False)
@click.option(
    "--request",
    "request_file",
    metavar="FILE|-",
    help="Route a Messages request body (JSON) instead of a prompt.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.option("--log", "log_it", is_flag=True, help="Record the decision in the log (source cli).")
@click.option("--session-id", help="Session id to record with --log.")
@click.pass_obj
def route(
    state: State,
    prompt: str | None,
    request_file: str | None,
    as_json: bool,
    log_it: bool,
    session_id: str | None,
) -> None:
    """Show where PROMPT (or a request body) would be routed, and why.

    PROMPT may be '-' to read the prompt from stdin. Nothing is written unless --log is given.
    """
    if (prompt is None) == (request_file is None):
        raise click.UsageError("give either a PROMPT or --request FILE (not both)")
    loaded = state.loaded()
    signals: Signals
    if request_file is not None:
        body, headers = _read_request(request_file)
        signals = signals_from_request(body, headers)
        if session_id:
            signals = _with_session(signals, session_id)
    else:
        text = sys.stdin.read() if prompt == "-" else prompt
        signals = signals_from_prompt(text or "", session_id)
    decision = decide(signals, loaded.config)
    if log_it:
        with closing(open_log()) as conn:
            store.record(conn, decision_row(decision, signals, loaded.config, source="cli"))
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        click.echo(render.decision_text(decision))


def _with_session(signals: Signals, session_id: str) -> Signals:
    return signals.replace(session_id=session_id)


# --- config ------------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Where the routing config lives, what is in effect, and whether a file is valid."""


@config.command("path")
@click.pass_obj
def config_path_cmd(state: State) -> None:
    """Print the path of the config file in use (or the one `init` would write)."""
    path = state.config_file or home.config_path()
    click.echo(str(path))
    if not path.exists():
        click.echo(
            "(not created yet: the embedded default is in use; run `hybrid-router init`)", err=True
        )


@config.command("show")
@click.pass_obj
def config_show(state: State) -> None:
    """Print the config in effect as JSON, with each provider's effective URL and key status."""
    from pydantic import TypeAdapter

    from .config import RouterConfig, provider_api_key, provider_base_url

    loaded = state.loaded()
    environment = home.load_environment()
    data = TypeAdapter(RouterConfig).dump_python(
        loaded.config, mode="json", by_alias=True, exclude_none=True
    )
    data.pop("schema", None)
    for name, provider in loaded.config.providers.items():
        entry = data["providers"][name]
        entry["effectiveBaseUrl"] = provider_base_url(provider, environment)
        if provider.api_key_env:
            present = provider_api_key(provider, environment) is not None
            entry["apiKey"] = "set" if present else "not set"
    source = str(loaded.source) if loaded.source else f"{default_config_path()} (embedded default)"
    click.echo(
        json.dumps({"source": source, "home": str(home.home_dir()), "config": data}, indent=2)
    )


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def config_check(state: State, file: Path | None) -> None:
    """Validate FILE (default: the config in use); exit 1 with the problem if it is invalid."""
    try:
        loaded = load_config(file or state.config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    cfg = loaded.config
    where = str(loaded.source) if loaded.source else "embedded default"
    click.echo(
        f"ok: {where}: {len(cfg.routes)} routes, {len(cfg.tiers)} tiers, "
        f"{len(cfg.providers)} providers"
    )


# --- init --------------------------------------------------------------------------------------


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.option("--if-missing", is_flag=True, help="Do nothing (and succeed) when the file exists.")
@click.pass_obj
def init(state: State, force: bool, if_missing: bool) -> None:
    """Write the default routing config to the home directory."""
    target = state.config_file or home.config_path()
    if target.exists() and not force:
        if if_missing:
            click.echo(f"kept existing config: {target}")
            return
        raise click.ClickException(f"{target} already exists (use --force to overwrite it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_config_path(), target)
    click.echo(f"wrote default config: {target}")


# --- stats -------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--since",
    default="all",
    show_default=True,
    help="Period: 30m, 24h, 7d, 2w, today, all, or an ISO date.",
)
@click.option(
    "--source", type=click.Choice(store.SOURCES), help="Only decisions from this surface."
)
@click.option("--session", help="Only decisions of this Claude Code session.")
@click.option(
    "--recent",
    type=click.IntRange(0, 1000),
    default=0,
    help="Also list the N most recent decisions.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON (= --format json).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "csv"]),
    default=None,
    help="text (default), json, or csv (one row per provider, with a header).",
)
def stats(
    since: str,
    source: str | None,
    session: str | None,
    recent: int,
    as_json: bool,
    output_format: str | None,
) -> None:
    """Requests, tokens and cost per provider; cost without the router; savings."""
    if as_json and output_format not in (None, "json"):
        raise click.UsageError(f"--json and --format {output_format} disagree; give one of them")
    output_format = "json" if as_json else (output_format or "text")
    if output_format == "csv" and recent:
        raise click.UsageError("--recent does not apply to --format csv")
    try:
        since_ts = parse_since(since)
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with closing(open_log()) as conn:
        result = compute_stats(conn, since=since_ts, source=source, session=session)
        rows = store.recent(conn, recent, since_ts, session, source) if recent else []
    if output_format == "csv":
        from .export import stats_csv

        click.echo(stats_csv(result), nl=False)
        return
    if output_format == "json":
        data = result.to_dict()
        if recent:
            data["recent"] = rows
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(render.stats_text(result))
    if recent:
        click.echo("")
        click.echo(render.recent_text(rows))


# --- mcp ---------------------------------------------------------------------------------------


@cli.command()
@click.pass_obj
def mcp(state: State) -> None:
    """Run the MCP server on stdio (what `claude mcp add hybrid-router -- hybrid-router mcp` runs)."""
    from .mcp_server.server import run_stdio  # the MCP SDK is heavy: only this command pays for it

    run_stdio(state.config_file)


# --- proxy -------------------------------------------------------------------------------------


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1; others need HYBRID_ROUTER_TOKEN).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 3000).")
@click.pass_obj
def proxy(state: State, host: str | None, port: int | None) -> None:
    """Run the Anthropic-compatible proxy: point Claude Code's ANTHROPIC_BASE_URL at it."""
    from .proxy.server import serve

    state.loaded()  # a broken config is one line here, before the server starts
    try:
        serve(state.config_file, host, port)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


# --- hooks and status line ---------------------------------------------------------------------
# `hybrid-router hook EVENT` and `hybrid-router statusline` normally never reach click: the
# console script's entry point (entry.py) sends them straight to their stdlib-only modules, since
# Claude Code runs them as a fresh process on every event. These commands exist for `--help`.


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("event")
def hook(event: str) -> None:
    """Run the Claude Code hook for EVENT (SessionStart, UserPromptSubmit, Stop, SessionEnd).

    Reads the event's JSON on stdin. Never fails Claude Code: any error is one line on stderr
    and exit 0.
    """
    from .hooks.main import run_hook

    sys.exit(run_hook(event))


@cli.command()
def statusline() -> None:
    """Print one status line for Claude Code (reads its status-line JSON on stdin)."""
    from .hooks.statusline import run_statusline

    sys.exit(run_statusline())


# --- install: the commands live in cli_install.py, registered here -----------------------------

from .cli_install import install as _install_command
from .cli_install import uninstall as _uninstall_command

cli.add_command(_install_command)
cli.add_command(_uninstall_command)

from .cli_doctor import doctor as _doctor_command

cli.add_command(_doctor_command)

from .cli_ops import logs as _logs_command
from .cli_ops import monitor as _monitor_command
from .cli_ops import setup as _setup_command

cli.add_command(_setup_command)
cli.add_command(_monitor_command)
cli.add_command(_logs_command)

from .cli_dashboard import dashboard as _dashboard_command

cli.add_command(_dashboard_command)


# --- demo --------------------------------------------------------------------------------------


@cli.command()
@click.pass_obj
def demo(state: State) -> None:
    """Route a few sample prompts with the config in effect, log them, and show the stats."""
    loaded = state.loaded()
    source = loaded.source or "the embedded default config"
    click.echo(f"Routing sample prompts with {source}:\n")
    with closing(open_log()) as conn:
        for prompt in SAMPLE_PROMPTS:
            signals = signals_from_prompt(prompt, session_id="demo")
            decision = decide(signals, loaded.config)
            store.record(conn, decision_row(decision, signals, loaded.config, source="cli"))
            click.echo(f"  {prompt}")
            click.echo(
                f"    -> {decision.provider}/{decision.model}  [{decision.rule}, {decision.complexity}]"
            )
        click.echo("")
        click.echo(render.stats_text(compute_stats(conn)))


def main() -> None:
    try:
        cli(prog_name="hybrid-router")
    except (OSError, sqlite3.Error) as exc:
        # The home or the log is unwritable, locked or damaged: say so in one line, no traceback.
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
