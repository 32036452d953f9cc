"""The hooks, the slash command and the status line of a project install, under the real Claude
Code CLI (tests/node), offline against FakeAnthropic; each test has its own HOME,
CLAUDE_CONFIG_DIR, project and HYBRID_ROUTER_HOME (the autouse `router_home` fixture).

What the pinned CLI does (seen here): every hook runs in `-p` mode, SessionEnd before the process
exits; the UserPromptSubmit `additionalContext` is appended to the trailing `role: "system"`
message of the request, after "UserPromptSubmit hook additional context: "; a `/command`'s
`!` line runs before the UserPromptSubmit hook; the status line never runs in `-p` mode.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from claude_cli import ClaudeResult, claude_env, run_claude
from fakes.fake_anthropic import FakeAnthropic, RecordedRequest, text

# The seed profile: the tests tell the tiers apart by model (see conftest.seed_profile).
pytestmark = pytest.mark.usefixtures("seed_profile")

VENV_BIN = Path(sys.executable).parent
SCRIPT = VENV_BIN / "hybrid-router"
CONTEXT_PREFIX = "UserPromptSubmit hook additional context: "
DELEGATE_TOOL = "mcp__hybrid-router__delegate_to_local"
HINT_MARK = "Self-contained parts of it suit"


# --- helpers ---------------------------------------------------------------------------------


def hybrid_router(tmp_path: Path, *args: str, stdin: str | None = None) -> str:
    """Run the installed console script with the CLI's tmp HOME / CLAUDE_CONFIG_DIR."""
    env, _, _ = claude_env("http://127.0.0.1:9", tmp_path)
    done = subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def install(tmp_path: Path, project: Path) -> None:
    hybrid_router(tmp_path, "install", "--scope", "project", "--project-dir", str(project))


def uninstall(tmp_path: Path, project: Path) -> None:
    hybrid_router(tmp_path, "uninstall", "--scope", "project", "--project-dir", str(project))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project with hybrid-router installed in it (project scope)."""
    path = tmp_path / "project"
    path.mkdir()
    install(tmp_path, path)
    return path


def rows(router_home: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(router_home / "decisions.db")
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


class PinSpy:
    """A FakeAnthropic handler that reads the `pins` table while the turn's request is in
    flight (the pin is cleared again by SessionEnd before the CLI exits)."""

    def __init__(self, router_home: Path) -> None:
        self.router_home = router_home
        self.seen: list[list[dict[str, Any]]] = []

    def __call__(self, request: RecordedRequest) -> None:
        try:
            self.seen.append(rows(self.router_home, "SELECT * FROM pins"))
        except sqlite3.DatabaseError as exc:  # a test's deliberately broken log
            self.seen.append([{"error": str(exc)}])


def ask(
    prompt: str, tmp_path: Path, cwd: Path, answer: str = "Done.", **kw: Any
) -> tuple[ClaudeResult, RecordedRequest, PinSpy]:
    """One `claude -p PROMPT` turn against a fresh fake; the result, its one main request and
    the pins seen during it."""
    spy = PinSpy(Path(os.environ["HYBRID_ROUTER_HOME"]))
    with FakeAnthropic(handler=spy) as fake:
        fake.enqueue(text(answer))
        result = run_claude(prompt, base_url=fake.url, tmp_path=tmp_path, cwd=cwd, **kw).check()
    (request,) = fake.main_requests()
    assert result.result == answer
    session_id = request.header("x-claude-code-session-id")
    assert session_id
    if result.json is not None:
        assert result.json["session_id"] == session_id
    return result, request, spy


def system_text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def hint_places(body: dict[str, Any]) -> list[str]:
    """Where the delegate hint occurs in a request body: 'system', 'messages[i]' or 'tools'."""
    places = [
        f"messages[{i}]" for i, m in enumerate(body["messages"]) if HINT_MARK in json.dumps(m)
    ]
    places += [key for key in ("system", "tools") if HINT_MARK in json.dumps(body.get(key))]
    return places


def assert_hint(body: dict[str, Any], route: str, model: str) -> None:
    last = body["messages"][-1]
    assert hint_places(body) == [f"messages[{len(body['messages']) - 1}]"]
    assert last["role"] == "system"
    context = system_text(last)
    assert context.count(CONTEXT_PREFIX) == 1
    hint = context.split(CONTEXT_PREFIX, 1)[1]  # appended at the very end of the message
    assert hint.startswith(f"hybrid-router: this prompt fits {route}")
    assert f"suit the {DELEGATE_TOOL} tool" in hint
    assert hint.endswith(f"on the local model {model} at no API cost.")


def assert_no_hint(body: dict[str, Any]) -> None:
    assert hint_places(body) == []
    assert CONTEXT_PREFIX not in json.dumps(body)


def decision_for(router_home: Path, session_id: str) -> dict[str, Any]:
    (row,) = rows(router_home, "SELECT * FROM decisions WHERE session_id = ?", session_id)
    return row


# --- 1. a code-generation prompt: row, pin, session, hint --------------------------------------


def test_code_generation_prompt_logs_pins_and_hints(tmp_path, project, router_home):
    _, request, spy = ask("write unit tests for utils.py", tmp_path, project)
    session_id = request.header("x-claude-code-session-id")

    (row,) = rows(router_home, "SELECT * FROM decisions")
    assert row["source"] == "hook"
    assert row["outcome"] == "routed"
    assert row["rule"] == "code-generation"
    assert (row["provider"], row["model"], row["tier"]) == ("ollama", "deepseek-coder:33b", "coder")
    assert row["session_id"] == session_id
    assert row["prompt_id"]
    assert row["prompt_text"] is None  # storePrompts is off by default
    assert row["prompt_chars"] == len("write unit tests for utils.py")

    # The pin existed while the turn's request was in flight ...
    (pins,) = spy.seen
    (pin,) = pins
    assert pin["session_id"] == session_id
    assert pin["prompt_id"] == row["prompt_id"]
    assert (pin["provider"], pin["model"], pin["rule"]) == (
        "ollama",
        "deepseek-coder:33b",
        "code-generation",
    )
    # ... and SessionEnd ran before the CLI exited: the session is ended and the pin cleared.
    assert rows(router_home, "SELECT * FROM pins") == []
    (session,) = rows(router_home, "SELECT * FROM sessions")
    assert session["session_id"] == session_id
    assert session["source"] == "startup"
    assert os.path.realpath(session["cwd"]) == os.path.realpath(project)
    assert session["ended_at"] is not None and session["ended_at"] >= session["started_at"]
    assert session["end_reason"] == "other"
    assert session["started_at"] <= row["ts"] <= session["ended_at"]

    assert_hint(request.body, "the code-generation route", "deepseek-coder:33b")
    assert "(matched 'write', 'unit tests')" in system_text(request.body["messages"][-1])
    # the prompt itself reaches the model unchanged, in the user turn
    assert "write unit tests for utils.py" in json.dumps(request.body["messages"][0])
    assert DELEGATE_TOOL in request.tool_names  # the hint names a tool Claude really has


# --- 2 and 3. premium routes and directives ----------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "rule", "provider", "model", "hinted"),
    [
        (
            "review the auth code for sql injection",
            "security",
            "anthropic",
            "claude-sonnet-5",
            False,
        ),
        ("@local explain how the cache works", "directive:@local", "ollama", "llama3:70b", True),
        ("@claude list the files", "directive:@claude", "anthropic", "claude-sonnet-5", False),
    ],
    ids=["premium", "at-local", "at-claude"],
)
def test_routes_and_directives(
    tmp_path, project, router_home, prompt, rule, provider, model, hinted
):
    _, request, spy = ask(prompt, tmp_path, project)
    session_id = request.header("x-claude-code-session-id")
    row = decision_for(router_home, session_id)
    assert (row["source"], row["outcome"]) == ("hook", "routed")
    assert (row["rule"], row["provider"], row["model"]) == (rule, provider, model)
    assert row["prompt_id"]
    (pins,) = spy.seen
    assert [(p["session_id"], p["rule"], p["provider"]) for p in pins] == [
        (session_id, rule, provider)
    ]
    if hinted:
        assert_hint(request.body, rule, model)
    else:
        assert_no_hint(request.body)
    # the directive is not stripped from what Claude sees: only the router reads it
    assert prompt in json.dumps(request.body["messages"][0])


# --- 4. /route-stats ---------------------------------------------------------------------------


def test_route_stats_command_runs_the_stats(tmp_path, project, router_home):
    # one logged decision beforehand, so the stats come from this home's log
    hybrid_router(tmp_path, "route", "--log", "list the files in src")
    result, request, _ = ask(
        "/route-stats 24h",
        tmp_path,
        project,
        answer="Here are the stats.",
        output_format="stream-json",
    )
    init = next(e for e in result.events if e.get("subtype") == "init")
    assert "route-stats" in init["slash_commands"]

    sent = json.dumps(request.body["messages"])
    assert "<command-name>/route-stats</command-name>" in sent
    assert "<command-args>24h</command-args>" in sent
    # the `!` line ran (allowed by the command's allowed-tools) with "$ARGUMENTS" filled in; it
    # ran before the UserPromptSubmit hook logged this turn: the stats show the one earlier row
    assert re.search(r"Routing stats, since \d{4}-\d\d-\d\d \d\d:\d\d: 1 decision\b", sent), sent
    assert re.search(r"cli +file-operations +ollama/", sent), sent
    assert 'Above are the hybrid-router routing stats for the period \\"24h\\"' in sent
    assert "!`hybrid-router" not in sent  # replaced by its output

    # the hook left the tool's own command alone: no row for this session, no pin, no hint
    conn = sqlite3.connect(router_home / "decisions.db")
    session = request.header("x-claude-code-session-id")
    assert (
        conn.execute("SELECT COUNT(*) FROM decisions WHERE session_id = ?", (session,)).fetchone()[
            0
        ]
        == 0
    )
    assert_no_hint(request.body)


# --- 5. uninstall restores the files -----------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_uninstall_restores_the_project_bytes(tmp_path, router_home):
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    mine_log = tmp_path / "mine.log"  # one event JSON a line
    mine = f"tr -d '\\n' >> '{mine_log}'; echo >> '{mine_log}'"
    # the user's own files, in their own style (4-space indent, no trailing newline)
    (project / ".claude" / "settings.json").write_text(
        json.dumps(
            {
                "permissions": {"allow": ["Bash(make:*)"]},
                "hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": mine}]}]},
            },
            indent=4,
        )
    )
    (project / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"other": {"command": "true", "args": []}}}, indent=4)
    )
    _, _, config_dir = claude_env("http://127.0.0.1:9", tmp_path)
    (config_dir / "settings.json").write_text('{"env": {"FOO": "bar"}}\n')
    project_before, config_before = snapshot(project), snapshot(config_dir)

    install(tmp_path, project)
    assert snapshot(config_dir) == config_before  # project scope leaves the user's files alone
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    commands = [h["command"] for g in settings["hooks"]["UserPromptSubmit"] for h in g["hooks"]]
    assert commands[1:] == ["hybrid-router hook UserPromptSubmit"]
    assert settings["permissions"] == {"allow": ["Bash(make:*)"]}

    _, request, _ = ask("write unit tests for utils.py", tmp_path, project)
    session_id = request.header("x-claude-code-session-id")
    assert decision_for(router_home, session_id)["rule"] == "code-generation"
    assert_hint(request.body, "the code-generation route", "deepseek-coder:33b")
    # the user's hook ran next to ours
    assert json.loads(mine_log.read_text().splitlines()[0])["session_id"] == session_id
    config_after_run = snapshot(config_dir)  # the CLI writes its own state there

    uninstall(tmp_path, project)
    # byte for byte, and no backup left in the repository: they live in the tool's home
    assert snapshot(project) == project_before
    backups = {p.name: p.read_bytes() for p in (router_home / "backups").iterdir()}
    for name, original in project_before.items():
        flattened = str((project / name).resolve()).strip("/").replace("/", "__")
        assert original in [v for k, v in backups.items() if k.startswith(flattened + ".")], name
    assert snapshot(config_dir) == config_after_run

    # and the CLI no longer runs the router: no new row, no hint; the user's hook still runs
    _, request, _ = ask("write unit tests for utils.py", tmp_path, project)
    assert_no_hint(request.body)
    assert len(rows(router_home, "SELECT * FROM decisions")) == 1
    assert len(mine_log.read_text().splitlines()) == 2


# --- 6. a broken home never breaks the CLI -----------------------------------------------------


@pytest.mark.parametrize("broken", ["database", "config"])
def test_broken_home_fails_open(tmp_path, project, router_home, broken):
    router_home.mkdir(parents=True, exist_ok=True)
    if broken == "database":
        path, garbage = router_home / "decisions.db", b"this is not a database\n" * 200
        error = "DatabaseError: file is not a database"
    else:
        path, garbage = router_home / "router-config.json", b'{"providers": {,}'
        error = f"ConfigError: {path}: line 1 column"
    path.write_bytes(garbage)

    result, request, _ = ask(
        "say hi", tmp_path, project, answer="Hi from the fake!", output_format="stream-json"
    )
    assert result.events[-1]["type"] == "result" and not result.events[-1]["is_error"]
    assert_no_hint(request.body)
    # the SessionStart hook reported the failure in one line and exited 0
    (response,) = [
        e
        for e in result.events
        if e.get("subtype") == "hook_response" and e.get("hook_event") == "SessionStart"
    ]
    assert response["exit_code"] == 0 and response["stdout"] == ""
    (line,) = response["stderr"].splitlines()
    assert line.startswith(f"hybrid-router hook SessionStart: {error}"), line
    # the MCP server still starts, and the broken file is left as it was
    init = next(e for e in result.events if e.get("subtype") == "init")
    assert {"name": "hybrid-router", "status": "connected"} in init["mcp_servers"]
    assert path.read_bytes() == garbage
    if broken == "config":  # nothing could be classified, so nothing was logged
        assert rows(router_home, "SELECT * FROM decisions") == []
        assert rows(router_home, "SELECT * FROM pins") == []


# --- 7. the status line ------------------------------------------------------------------------


def test_status_line_names_the_last_route(tmp_path, project):
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    assert settings["statusLine"] == {
        "type": "command",
        "command": "hybrid-router statusline",
        "padding": 0,
    }
    # the CLI accepts the settings (the status line itself does not run in -p mode)
    _, request, _ = ask("write unit tests for utils.py", tmp_path, project)
    session_id = request.header("x-claude-code-session-id")

    def status(for_session: str) -> str:
        payload = {  # what Claude Code sends a status line command
            "hook_event_name": "Status",
            "session_id": for_session,
            "transcript_path": str(tmp_path / "transcript.jsonl"),
            "cwd": str(project),
            "model": {"id": "claude-opus-4-8", "display_name": "Opus"},
            "workspace": {"current_dir": str(project), "project_dir": str(project)},
            "version": "2.1.197",
            "output_style": {"name": "default"},
            "cost": {
                "total_cost_usd": 0.1,
                "total_duration_ms": 2000,
                "total_api_duration_ms": 100,
                "total_lines_added": 0,
                "total_lines_removed": 0,
            },
            "exceeds_200k_tokens": False,
        }
        return hybrid_router(tmp_path, "statusline", stdin=json.dumps(payload))

    line = status(session_id)
    # the hook classified the turn; nothing ran on a local model, so nothing is counted as local
    assert line == (
        "hybrid-router | routed: ollama/deepseek-coder:33b (code-generation) | saved $0.00 today\n"
    )
    assert status("another-session").startswith("hybrid-router | no route yet this session |")
