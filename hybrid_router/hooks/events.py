"""What each Claude Code hook event does: small functions from the event's JSON to effects.

`main.py` owns the process (stdin, stdout, exit code, failing open); these functions own the
decisions and the database writes.
"""

from __future__ import annotations

import os
import time

from ..core import home, patterns
from ..core.outcomes import ANSWERED_CALL_FILTER, SOURCE_HOOK
from ..core.routing import Decision, decide
from ..core.signals import signals_from_prompt
from ..log.pins import Pin, clear_pin, end_session, prune_pins, start_session, write_pin
from ..log.rows import decision_row, record
from .table_cache import HookSettings

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from types import ModuleType
    from typing import Any

DIRECTIVES = ("@local", "@claude", "@openrouter")


def _regex_engine() -> ModuleType:
    """The `regex` package, imported only when a config pattern is first evaluated."""
    import regex

    return regex


patterns.use_engine(_regex_engine)
MCP_SERVER_NAME = "hybrid-router"
DELEGATE_TOOL = "delegate_to_local"


def split_directive(prompt: str) -> tuple[str | None, str]:
    """An explicit routing directive at the very start of a prompt, and the rest of the prompt."""
    stripped = prompt.lstrip()
    lowered = stripped[:16].lower()  # a directive is all it looks for: not a huge prompt's copy
    for directive in DIRECTIVES:
        if lowered.startswith(directive):
            rest = stripped[len(directive) :]
            if not rest or rest[0].isspace() or rest[0] in ":,":
                return directive, rest.lstrip(" \t\r\n:,")
    return None, prompt


def decide_prompt(prompt: str, session_id: str | None, settings: HookSettings) -> Decision:
    """The rules' decision for a prompt, overridden by a leading @local / @claude / @openrouter."""
    directive, text = split_directive(prompt)
    signals = signals_from_prompt(text, session_id)
    decision = decide(signals, settings.table, settings.intent)
    if directive is None:
        return decision
    rule = f"directive:{directive}"
    if directive == "@local" and settings.is_local(decision.provider):
        return decision.replace(rule=rule, reason=f"{directive} directive; {decision.reason}")
    target = settings.directive_targets.get(directive)
    if target is None:
        return decision.replace(
            reason=f"{directive} ignored: no such target is configured; {decision.reason}"
        )
    return decision.replace(
        provider=target.provider,
        model=target.model,
        tier=target.tier,
        rule=rule,
        reason=f"{directive} directive (the rules said {decision.rule})",
        matched=(),
        fallbacks=target.fallbacks,
    )


def _read_json_file(path: str) -> Any:
    from .fastjson import loads

    with open(path, encoding="utf-8") as handle:
        return loads(handle.read())


def _names_server(servers: Any) -> bool:
    if not isinstance(servers, dict):
        return False
    if MCP_SERVER_NAME in servers:
        return True
    for entry in servers.values():  # registered under another name: look at what it runs
        if isinstance(entry, dict) and "mcp" in (entry.get("args") or []):
            command = str(entry.get("command", ""))
            if command.endswith("hybrid-router"):
                return True
    return False


def delegate_tool_name(environ: dict[str, str], project_dir: str) -> str | None:
    """The delegate tool's name as Claude sees it, or None when the MCP server is not registered.

    Looks where Claude Code keeps MCP servers: the plugin (when these hooks run from it), the
    project's `.mcp.json`, and `.claude.json` (user scope, and local scope under the project).
    """
    if environ.get("CLAUDE_PLUGIN_ROOT"):
        return f"mcp__plugin_{MCP_SERVER_NAME}_{MCP_SERVER_NAME}__{DELEGATE_TOOL}"
    tool = f"mcp__{MCP_SERVER_NAME}__{DELEGATE_TOOL}"
    candidates = [os.path.join(project_dir, ".mcp.json")]
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    candidates.append(
        os.path.join(config_dir, ".claude.json")
        if config_dir
        else os.path.join(os.path.expanduser("~"), ".claude.json")
    )
    for path in candidates:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        if b"hybrid-router" not in raw:  # most files never mention it: skip parsing them
            continue
        try:
            data = _read_json_file(path)
        except (OSError, ValueError, RecursionError):  # unreadable, invalid, nested too deep
            continue
        if not isinstance(data, dict):
            continue
        if _names_server(data.get("mcpServers")):
            return tool
        project = (data.get("projects") or {}).get(project_dir)
        if isinstance(project, dict) and _names_server(project.get("mcpServers")):
            return tool
    return None


def delegate_hint(decision: Decision, settings: HookSettings, tool: str) -> str:
    """Plain facts for Claude's context: which route matched, and which local tool suits it."""
    what = (
        f"the {decision.rule} route"
        if not decision.rule.startswith("directive:")
        else decision.rule
    )
    matched = (
        f" (matched {', '.join(repr(m) for m in decision.matched[:3])})" if decision.matched else ""
    )
    return (
        f"hybrid-router: this prompt fits {what}{matched}. Self-contained parts of it suit "
        f"the {tool} tool, which runs them on the local model {decision.model} at no API cost."
    )


def is_own_command(prompt: str) -> bool:
    """Whether the prompt is one of the tool's own slash commands (`/route-stats`): asking for
    the numbers is not work to route, and logging it would count it as a prompt sent local.
    The commands are the files of settings-templates/commands/ (what `install` copies)."""
    stripped = prompt.lstrip()
    if not stripped.startswith("/"):
        return False
    word = stripped[1:].split(maxsplit=1)[0] if len(stripped) > 1 else ""
    try:
        names = os.listdir(os.path.join(home.templates_path(), "commands"))
    except OSError:
        return False
    return f"{word}.md" in names


def on_user_prompt(
    payload: dict[str, Any],
    settings: HookSettings,
    conn: sqlite3.Connection,
    environ: dict[str, str],
) -> str | None:
    """Classify the prompt, log it, pin the turn; return the hint for Claude's context, if any."""
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or is_own_command(prompt):
        return None
    session_id = payload.get("session_id") or None
    prompt_id = payload.get("prompt_id") or None
    decision = decide_prompt(prompt, session_id, settings)
    _, routed_text = split_directive(prompt)
    row = decision_row(
        decision,
        None,
        source=SOURCE_HOOK,
        store_prompts=settings.store_prompts,
        session_id=session_id,
        prompt_id=prompt_id,
        prompt=routed_text,
    )
    conn.execute("BEGIN")
    try:
        record(conn, row)
        if session_id:
            write_pin(
                conn,
                Pin(
                    session_id,
                    prompt_id,
                    decision.provider,
                    decision.model,
                    decision.tier,
                    decision.rule,
                    decision.reason,
                    time.time(),
                ),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    hinted = decision.rule in settings.hint_routes or decision.rule == "directive:@local"
    if not hinted or not settings.is_local(decision.provider):
        return None
    project_dir = environ.get("CLAUDE_PROJECT_DIR") or str(payload.get("cwd") or os.getcwd())
    tool = delegate_tool_name(environ, project_dir)
    return delegate_hint(decision, settings, tool) if tool else None


def on_session_start(
    payload: dict[str, Any], settings: HookSettings, conn: sqlite3.Connection
) -> None:
    session_id = payload.get("session_id")
    model = payload.get("model")
    if isinstance(model, dict):  # some versions send {id, display_name}
        model = model.get("id")
    if session_id:
        start_session(
            conn,
            session_id,
            payload.get("source"),
            model if isinstance(model, str) else None,
            payload.get("cwd"),
        )
    prune_pins(conn, time.time() - settings.pin_ttl_seconds)


def on_session_end(payload: dict[str, Any], conn: sqlite3.Connection) -> None:
    session_id = payload.get("session_id")
    if session_id:
        end_session(conn, session_id, payload.get("reason"))
        clear_pin(conn, session_id)


def session_savings(conn: sqlite3.Connection, session_id: str) -> tuple[int, int, float]:
    """Model calls answered this session, how many cost nothing, and the estimated saving."""
    answered, free, saved = conn.execute(
        "SELECT COUNT(*), TOTAL(cost = 0), TOTAL(baseline_cost - cost) FROM decisions "
        f"WHERE session_id = ? AND {ANSWERED_CALL_FILTER}",
        (session_id,),
    ).fetchone()
    return int(answered), int(free), float(saved)


def on_stop(payload: dict[str, Any], conn: sqlite3.Connection) -> str | None:
    """At most one line for the user: what the router saved in this session so far."""
    if payload.get("stop_hook_active"):
        return None
    session_id = payload.get("session_id")
    if not session_id:
        return None
    answered, free, saved = session_savings(conn, session_id)
    if not answered or saved < 0.0001:
        return None
    return (
        f"hybrid-router: {free} of {answered} model calls this session ran free; "
        f"saved ~${saved:.4f}"
    )
