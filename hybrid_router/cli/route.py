"""`hybrid-router route` (where a prompt or request would go, and why) and `hybrid-router demo`."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from ..config.compile import routing_table
from ..core.outcomes import SOURCE_CLI
from ..core.routing import Decision, decide
from ..core.signals import Signals, signals_from_prompt, signals_from_request
from ..core.text import shown
from ..log.report import stats_text
from ..log.rows import decision_row, record
from ..log.stats import compute_stats
from .state import State, open_log, pass_state

SAMPLE_PROMPTS = (
    "list the files in src/ and show me where the config is loaded",
    "write unit tests for the date parser in utils/dates.py",
    "explain how the request pipeline works, from the router to the handlers",
    "review the login handler for SQL injection and leaked credentials",
    "production is down after the deploy: users are seeing data loss, what do we roll back?",
    "search the web for the latest httpx2 release notes",
    "rename the variable tmp to buffer in parser.py",
)


def decision_text(decision: Decision) -> str:
    tier = f" (tier {decision.tier})" if decision.tier else ""
    lines = [
        f"provider    {shown(decision.provider)}",
        f"model       {shown(decision.model)}{shown(tier)}",
        f"rule        {shown(decision.rule)}",
        f"reason      {shown(decision.reason)}",
        f"complexity  {decision.complexity}",
        f"tokens      ~{decision.estimated_tokens:,} (estimated)",
    ]
    if decision.fallbacks:
        chain = ", ".join(shown(f"{ref.provider}/{ref.model}") for ref in decision.fallbacks)
        lines.append(f"fallbacks   {chain}")
    return "\n".join(lines)


def read_request(source: str) -> tuple[dict[str, Any], dict[str, str]]:
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


@click.command()
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
@pass_state
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
    config = state.loaded().config
    signals: Signals
    if request_file is not None:
        body, headers = read_request(request_file)
        signals = signals_from_request(body, headers)
        if session_id:
            signals = signals.replace(session_id=session_id)
    else:
        text = sys.stdin.read() if prompt == "-" else prompt
        signals = signals_from_prompt(text or "", session_id)
    decision = decide(signals, routing_table(config))
    if log_it:
        with closing(open_log()) as conn:
            record(
                conn,
                decision_row(
                    decision, signals, source=SOURCE_CLI, store_prompts=config.store_prompts
                ),
            )
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        click.echo(decision_text(decision))


@click.command()
@pass_state
def demo(state: State) -> None:
    """Route a few sample prompts with the config in effect, log them, and show the stats."""
    loaded = state.loaded()
    table = routing_table(loaded.config)
    source = loaded.source or "the embedded default config"
    click.echo(f"Routing sample prompts with {source}:\n")
    with closing(open_log()) as conn:
        for prompt in SAMPLE_PROMPTS:
            signals = signals_from_prompt(prompt, session_id="demo")
            decision = decide(signals, table)
            record(
                conn,
                decision_row(
                    decision, signals, source=SOURCE_CLI, store_prompts=loaded.config.store_prompts
                ),
            )
            click.echo(f"  {prompt}")
            target = f"{decision.provider}/{decision.model}"
            click.echo(f"    -> {target}  [{decision.rule}, {decision.complexity}]")
        click.echo("")
        click.echo(stats_text(compute_stats(conn)))


def register(cli: click.Group) -> None:
    cli.add_command(route)
    cli.add_command(demo)
