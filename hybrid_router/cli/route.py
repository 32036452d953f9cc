"""`hybrid-router route` (where a prompt or request would go, and why) and `hybrid-router demo`."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from ..config.compile import routing_table
from ..core.complexity import complexity_score
from ..core.intent import IntentModel, load_model
from ..core.matching import tokenize
from ..core.outcomes import SOURCE_CLI
from ..core.routing import NO_MATCH, Decision, decide, keyword_evidence, route_evidence
from ..core.signals import Signals, signals_from_prompt, signals_from_request
from ..core.table import RoutingTable
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
@click.option(
    "--explain",
    is_flag=True,
    help="Also show each route's evidence and the intent model's scores.",
)
@click.option("--log", "log_it", is_flag=True, help="Record the decision in the log (source cli).")
@click.option("--session-id", help="Session id to record with --log.")
@pass_state
def route(
    state: State,
    prompt: str | None,
    request_file: str | None,
    as_json: bool,
    explain: bool,
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
    table = routing_table(config)
    intent = load_model()
    decision = decide(signals, table, intent)
    if log_it:
        with closing(open_log()) as conn:
            record(
                conn,
                decision_row(
                    decision, signals, source=SOURCE_CLI, store_prompts=config.store_prompts
                ),
            )
    if as_json:
        data = decision.to_dict()
        if explain:
            data["explain"] = explanation(signals, table, intent)
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(decision_text(decision))
        if explain:
            click.echo("")
            click.echo(explanation_text(explanation(signals, table, intent)))


COMBINATION_RULE = (
    "hard rules first (server web tools, background requests); then a decisive intent vote "
    "(probability at its threshold or over) decides, in either direction; an unsure vote lets a "
    "premium route named by the keywords or the vote win, then the first route whose keywords "
    "and conditions hold, then the vote over the default route; then the context-window rule"
)


def explanation(
    signals: Signals, table: RoutingTable, intent: IntentModel | None
) -> dict[str, Any]:
    """Why a prompt routes where it does: each route's evidence, the complexity points, and the
    intent model's probabilities and vote (what `--explain` prints)."""
    text = signals.text
    tokens = tokenize(text)
    score = complexity_score(text, tokens)
    complexity = "high" if score >= 4 else "medium" if score >= 2 else "low"
    routes: list[dict[str, Any]] = []
    for route in table.routes:
        found = keyword_evidence(route, text, tokens)
        excluded = [" ".join(tokens[start:end]) for start, end in route.matcher.excluded(tokens)]
        holds = route_evidence(route, signals, tokens, complexity, found) is not None
        entry: dict[str, Any] = {
            "route": route.name,
            "tier": route.target.tier,
            "matched": [] if found is NO_MATCH else list(found),  # type: ignore[call-overload]
            "excluded": excluded,
            "holds": holds,
        }
        if route.complexity:
            entry["needs_complexity"] = list(route.complexity)
        routes.append(entry)
    result: dict[str, Any] = {
        "rule": COMBINATION_RULE,
        "complexity": {"level": complexity, "points": score},
        "routes": routes,
        "intent": None,
    }
    if intent is not None and text:
        ranked = intent.probabilities(text)
        vote = intent.vote_on(ranked)
        result["intent"] = {
            "threshold": intent.threshold,
            "costs": dict(zip(intent.classes, intent.costs, strict=True)),
            "probabilities": {name: round(p, 4) for name, p in ranked},
            "vote": vote.route,
            "decisive": vote.decisive,
            "because": [
                [feature, round(push, 3)]
                for feature, push in intent.contributions(text, vote.route)
            ],
        }
    return result


def explanation_text(data: dict[str, Any]) -> str:
    level = data["complexity"]
    lines = [
        f"rule        {data['rule']}",
        f"complexity  {level['level']} ({level['points']} points: 0-1 low, 2-3 medium, 4+ high)",
        "routes (keyword evidence, in config order):",
    ]
    for entry in data["routes"]:
        mark = "holds" if entry["holds"] else "-"
        matched = ", ".join(shown(m) for m in entry["matched"]) or "no match"
        line = f"  {entry['route']:<16} {mark:<6} matched: {matched}"
        if entry["excluded"]:
            line += "; excluded: " + ", ".join(shown(e) for e in entry["excluded"])
        if entry.get("needs_complexity"):
            line += f"; needs complexity {'/'.join(entry['needs_complexity'])}"
        lines.append(line)
    found = data["intent"]
    if found is None:
        lines.append("intent      no model (keyword routes only)")
        return "\n".join(lines)
    how = "decisive" if found["decisive"] else f"unsure: under the threshold {found['threshold']}"
    lines.append(f"intent      vote: {found['vote']} ({how})")
    for name, probability in found["probabilities"].items():
        cost = found["costs"].get(name, 1.0)
        lines.append(f"  {name:<16} p={probability:.3f}  x cost {cost:g}")
    if found["because"]:
        words = ", ".join(f"{shown(f)} (+{p:.2f})" for f, p in found["because"])
        lines.append(f"  because     {words}")
    lines.append(
        '  (teach it: add {"prompt": ..., "route": ...} lines to <home>/intent-examples.jsonl)'
    )
    return "\n".join(lines)


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
            decision = decide(signals, table, load_model())
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
