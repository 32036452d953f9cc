"""`hybrid-router stats`: requests, tokens and cost per provider; cost without router; savings."""

from __future__ import annotations

import json
from contextlib import closing

import click

from ..core.outcomes import SOURCES
from ..log.export import stats_csv
from ..log.queries import recent as recent_rows
from ..log.report import recent_text, stats_text
from ..log.stats import compute_stats
from .state import SINCE_HELP, open_log, parse_period


@click.command()
@click.option("--since", default="all", show_default=True, help=SINCE_HELP)
@click.option("--source", type=click.Choice(SOURCES), help="Only decisions from this surface.")
@click.option("--session", help="Only decisions of this Claude Code session.")
@click.option(
    "--recent",
    type=click.IntRange(0, 1000),
    default=0,
    help="Also list the N most recent decisions.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the numbers as JSON (= --format json)."
)
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
    since_ts = parse_period(since)
    with closing(open_log()) as conn:
        result = compute_stats(conn, since=since_ts, source=source, session=session)
        rows = recent_rows(conn, recent, since_ts, session, source) if recent else []
    if output_format == "csv":
        click.echo(stats_csv(result), nl=False)
        return
    if output_format == "json":
        data = result.to_dict()
        if recent:
            data["recent"] = rows
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(stats_text(result))
    if recent:
        click.echo("")
        click.echo(recent_text(rows))


def register(cli: click.Group) -> None:
    cli.add_command(stats)
