"""The Claude Code hooks and the status line, in process and as the installed console script."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from proxy_server import config_data

from hybrid_router.hooks.events import split_directive
from hybrid_router.hooks.main import run_hook
from hybrid_router.hooks.statusline import run_statusline
from hybrid_router.log.database import connect
from hybrid_router.log.pins import Pin, read_pin, write_pin
from hybrid_router.log.rows import DecisionRow, record

# The seed profile: the tests tell the tiers apart by model (see conftest.seed_profile).
pytestmark = pytest.mark.usefixtures("seed_profile")

SCRIPT = shutil.which("hybrid-router", path=str(Path(sys.executable).parent))


@pytest.fixture
def claude_dirs(tmp_path: Path, router_home: Path) -> dict[str, str]:
    """The environment a hook gets from Claude Code: its config dir and the project dir."""
    config_dir = tmp_path / "claude-config"
    project = tmp_path / "project"
    config_dir.mkdir()
    project.mkdir()
    return {
        "HYBRID_ROUTER_HOME": str(router_home),
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "CLAUDE_PROJECT_DIR": str(project),
        "HOME": str(tmp_path),
    }


def register_mcp(env: dict[str, str]) -> None:
    (Path(env["CLAUDE_PROJECT_DIR"]) / ".mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "hybrid-router": {"type": "stdio", "command": "hybrid-router", "args": ["mcp"]}
                }
            }
        )
    )


def hook(event: str, payload: dict | str, env: dict[str, str]) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    assert run_hook(event, io.StringIO(raw), stdout, stderr, env) == 0  # never anything else
    return stdout.getvalue(), stderr.getvalue()


def prompt(text: str, session: str = "sess-1", prompt_id: str = "p-1") -> dict:
    return {
        "session_id": session,
        "prompt_id": prompt_id,
        "prompt": text,
        "cwd": "/tmp",
        "hook_event_name": "UserPromptSubmit",
        "permission_mode": "default",
    }


def db(router_home: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(router_home / "decisions.db")
    conn.row_factory = sqlite3.Row
    return conn


# --- UserPromptSubmit -----------------------------------------------------------------------------


def test_prompt_is_logged_and_pinned_for_the_turn(claude_dirs, router_home):
    out, err = hook("UserPromptSubmit", prompt("write unit tests for utils.py"), claude_dirs)
    assert (out, err) == ("", "")  # no MCP server registered: no hint
    (row,) = db(router_home).execute("SELECT * FROM decisions").fetchall()
    assert (row["source"], row["rule"], row["provider"], row["model"]) == (
        "hook",
        "code-generation",
        "ollama",
        "deepseek-coder:33b",
    )
    assert (row["session_id"], row["prompt_id"], row["outcome"]) == ("sess-1", "p-1", "routed")
    assert row["prompt_text"] is None and row["prompt_chars"] == len(
        "write unit tests for utils.py"
    )
    pin = read_pin(connect(router_home / "decisions.db"), "sess-1")
    assert (pin.prompt_id, pin.provider, pin.model, pin.rule) == (
        "p-1",
        "ollama",
        "deepseek-coder:33b",
        "code-generation",
    )


def test_next_prompt_replaces_the_pin(claude_dirs, router_home):
    hook("UserPromptSubmit", prompt("write unit tests", prompt_id="p-1"), claude_dirs)
    hook("UserPromptSubmit", prompt("check for sql injection", prompt_id="p-2"), claude_dirs)
    pin = read_pin(connect(router_home / "decisions.db"), "sess-1")
    assert (pin.prompt_id, pin.provider, pin.rule) == ("p-2", "anthropic", "security")


def test_local_work_gets_a_factual_hint_when_the_mcp_server_is_registered(claude_dirs):
    register_mcp(claude_dirs)
    out, _ = hook("UserPromptSubmit", prompt("write unit tests for utils.py"), claude_dirs)
    context = json.loads(out)["hookSpecificOutput"]
    assert context["hookEventName"] == "UserPromptSubmit"
    hint = context["additionalContext"]
    assert "code-generation" in hint and "mcp__hybrid-router__delegate_to_local" in hint
    assert "deepseek-coder:33b" in hint and len(hint) < 400


@pytest.mark.parametrize(
    "text",
    ["review the login code for sql injection", "explain how the cache works", "hello there"],
)
def test_no_hint_for_premium_or_non_delegable_routes(claude_dirs, text):
    register_mcp(claude_dirs)
    out, _ = hook("UserPromptSubmit", prompt(text), claude_dirs)
    assert out == ""


def test_mcp_server_registered_in_claude_json_user_and_local_scope(claude_dirs):
    claude_json = Path(claude_dirs["CLAUDE_CONFIG_DIR"]) / ".claude.json"
    claude_json.write_text(
        json.dumps({"mcpServers": {"hybrid-router": {"command": "hybrid-router", "args": ["mcp"]}}})
    )
    assert hook("UserPromptSubmit", prompt("list the files in src"), claude_dirs)[0]
    claude_json.write_text(
        json.dumps(
            {
                "projects": {
                    claude_dirs["CLAUDE_PROJECT_DIR"]: {
                        "mcpServers": {
                            "router": {"command": "/opt/venv/bin/hybrid-router", "args": ["mcp"]}
                        }
                    }
                }
            }
        )
    )
    assert hook("UserPromptSubmit", prompt("list the files in src"), claude_dirs)[0]
    claude_json.write_text(
        json.dumps({"projects": {"/elsewhere": {"mcpServers": {"hybrid-router": {}}}}})
    )
    assert hook("UserPromptSubmit", prompt("list the files in src"), claude_dirs)[0] == ""


@pytest.mark.parametrize(
    "claude_json",
    [
        '{"mcpServers": {"hybrid-router": ',  # cut short
        '{"hybrid-router": ' + "[" * 100_000 + "]" * 100_000 + "}",  # deeper than json reads
    ],
)
def test_an_unreadable_claude_json_is_skipped_quietly(claude_dirs, router_home, claude_json):
    (Path(claude_dirs["CLAUDE_CONFIG_DIR"]) / ".claude.json").write_text(claude_json)
    out, err = hook("UserPromptSubmit", prompt("list the files in src"), claude_dirs)
    assert out == "" and err == ""  # no hint (no server found), and no error either
    assert db(router_home).execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1


def test_plugin_hooks_name_the_plugin_tool(claude_dirs):
    env = {**claude_dirs, "CLAUDE_PLUGIN_ROOT": "/plugins/hybrid-router"}
    out, _ = hook("UserPromptSubmit", prompt("grep for TODO"), env)
    assert "mcp__plugin_hybrid-router_hybrid-router__delegate_to_local" in out


@pytest.mark.parametrize(
    ("text", "rule", "provider"),
    [
        ("@local explain how the cache works", "directive:@local", "ollama"),
        ("@local review this for sql injection", "directive:@local", "ollama"),
        ("@claude list the files", "directive:@claude", "anthropic"),
        ("@OpenRouter: write a function", "directive:@openrouter", "openrouter"),
    ],
)
def test_directives_override_the_route_for_the_turn(claude_dirs, router_home, text, rule, provider):
    hook("UserPromptSubmit", prompt(text), claude_dirs)
    row = db(router_home).execute("SELECT rule, provider FROM decisions").fetchone()
    assert (row["rule"], row["provider"]) == (rule, provider)
    pin = read_pin(connect(router_home / "decisions.db"), "sess-1")
    assert (pin.rule, pin.provider) == (rule, provider)


def test_local_directive_gets_the_hint(claude_dirs):
    register_mcp(claude_dirs)
    out, _ = hook("UserPromptSubmit", prompt("@local explain how the cache works"), claude_dirs)
    assert "directive:@local" in json.loads(out)["hookSpecificOutput"]["additionalContext"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@local fix it", ("@local", "fix it")),
        ("  @claude\nplan the migration", ("@claude", "plan the migration")),
        ("@localhost is down", (None, "@localhost is down")),
        ("email me @local time", (None, "email me @local time")),
        ("@claude", ("@claude", "")),
    ],
)
def test_directive_must_lead_the_prompt(text, expected):
    assert split_directive(text) == expected


def test_prompt_text_is_stored_only_with_the_opt_in(claude_dirs, router_home):
    data = config_data()
    data["storePrompts"] = True
    (router_home).mkdir(parents=True, exist_ok=True)
    (router_home / "router-config.json").write_text(json.dumps(data))
    hook("UserPromptSubmit", prompt("@local write tests"), claude_dirs)
    assert (
        db(router_home).execute("SELECT prompt_text FROM decisions").fetchone()[0] == "write tests"
    )


def test_edited_config_is_picked_up_by_the_next_hook(claude_dirs, router_home):
    hook("UserPromptSubmit", prompt("write tests"), claude_dirs)
    data = config_data()
    data["tiers"]["coder"]["model"] = "qwen2.5-coder:14b"
    router_home.joinpath("router-config.json").write_text(json.dumps(data))
    hook("UserPromptSubmit", prompt("write more tests", prompt_id="p-2"), claude_dirs)
    models = [r[0] for r in db(router_home).execute("SELECT model FROM decisions ORDER BY id")]
    assert models == ["deepseek-coder:33b", "qwen2.5-coder:14b"]


# --- failing open ---------------------------------------------------------------------------------


def test_corrupt_database_fails_open_with_one_line(claude_dirs, router_home):
    router_home.mkdir(parents=True, exist_ok=True)
    (router_home / "decisions.db").write_bytes(b"not a database at all" * 200)
    out, err = hook("UserPromptSubmit", prompt("write tests"), claude_dirs)
    assert out == ""
    assert (
        err.startswith("hybrid-router hook UserPromptSubmit: DatabaseError")
        and err.count("\n") == 1
    )


def test_invalid_config_fails_open_naming_the_field(claude_dirs, router_home):
    router_home.mkdir(parents=True, exist_ok=True)
    data = config_data()
    data["tiers"]["coder"]["contextWindow"] = "huge"
    (router_home / "router-config.json").write_text(json.dumps(data))
    out, err = hook("UserPromptSubmit", prompt("write tests"), claude_dirs)
    assert out == "" and "tiers.coder.contextWindow" in err and err.count("\n") == 1


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"prompt": 5}', ""])
def test_bad_input_fails_open(claude_dirs, payload):
    out, err = hook("UserPromptSubmit", payload, claude_dirs)
    assert out == ""
    assert err == "" or (
        err.startswith("hybrid-router hook UserPromptSubmit: ") and err.count("\n") == 1
    )


def test_unknown_event_fails_open(claude_dirs):
    out, err = hook("PreCompact", {}, claude_dirs)
    assert out == "" and "unknown event 'PreCompact'" in err


def test_locked_database_does_not_stall_the_hook(claude_dirs, router_home):
    hook("UserPromptSubmit", prompt("write tests"), claude_dirs)  # creates the log
    holder = sqlite3.connect(router_home / "decisions.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.perf_counter()
        out, err = hook("UserPromptSubmit", prompt("write more tests"), claude_dirs)
        elapsed = time.perf_counter() - started
    finally:
        holder.execute("ROLLBACK")
    assert out == "" and "locked" in err and elapsed < 1.5  # SessionEnd's whole budget is 1.5 s


# --- SessionStart, Stop, SessionEnd ------------------------------------------------------------


def test_session_start_records_the_session_and_prunes_old_pins(claude_dirs, router_home):
    conn = connect(router_home / "decisions.db")
    write_pin(conn, Pin("old", None, "ollama", "m", None, "r", None, time.time() - 48 * 3600))
    write_pin(conn, Pin("recent", None, "ollama", "m", None, "r", None, time.time()))
    out, err = hook(
        "SessionStart",
        {"session_id": "sess-1", "source": "startup", "model": "claude-opus-4-8", "cwd": "/work"},
        claude_dirs,
    )
    assert (out, err) == ("", "")
    row = db(router_home).execute("SELECT source, model, cwd, ended_at FROM sessions").fetchone()
    assert tuple(row) == ("startup", "claude-opus-4-8", "/work", None)
    assert [r[0] for r in db(router_home).execute("SELECT session_id FROM pins")] == ["recent"]


def test_session_end_closes_the_session_and_clears_its_pin(claude_dirs, router_home):
    hook("SessionStart", {"session_id": "sess-1", "source": "startup"}, claude_dirs)
    hook("UserPromptSubmit", prompt("write tests"), claude_dirs)
    started = time.perf_counter()
    hook("SessionEnd", {"session_id": "sess-1", "reason": "other"}, claude_dirs)
    assert time.perf_counter() - started < 1.5
    row = db(router_home).execute("SELECT ended_at, end_reason FROM sessions").fetchone()
    assert row["ended_at"] is not None and row["end_reason"] == "other"
    assert db(router_home).execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 0


def test_stop_notes_savings_in_one_line_and_respects_stop_hook_active(claude_dirs, router_home):
    assert hook("Stop", {"session_id": "sess-1", "stop_hook_active": False}, claude_dirs) == (
        "",
        "",
    )
    conn = connect(router_home / "decisions.db")
    for provider, cost, baseline in (
        ("ollama", 0.0, 0.05),
        ("ollama", 0.0, 0.02),
        ("anthropic", 0.03, 0.03),
    ):
        record(
            conn,
            DecisionRow(
                source="proxy",
                rule="r",
                provider=provider,
                model="m",
                outcome="ok",
                session_id="sess-1",
                cost=cost,
                baseline_cost=baseline,
            ),
        )
    out, _ = hook("Stop", {"session_id": "sess-1", "stop_hook_active": False}, claude_dirs)
    note = json.loads(out)["systemMessage"]
    assert note == "hybrid-router: 2 of 3 model calls this session ran free; saved ~$0.0700"
    assert hook("Stop", {"session_id": "sess-1", "stop_hook_active": True}, claude_dirs) == ("", "")


# --- status line -------------------------------------------------------------------------------


def test_status_line_shows_last_route_local_share_and_savings(claude_dirs, router_home):
    """The share counts model calls (proxy and MCP rows), not the hook's classifications, and
    a turn the hook only classified reads as "routed", not as run."""
    hook("UserPromptSubmit", prompt("write tests"), claude_dirs)
    conn = connect(router_home / "decisions.db")
    record(
        conn,
        DecisionRow(
            source="proxy",
            rule="r",
            provider="anthropic",
            model="claude-opus-4-8",
            outcome="ok",
            session_id="other",
            cost=0.01,
            baseline_cost=0.01,
        ),
    )
    record(
        conn,
        DecisionRow(
            source="mcp",
            rule="r",
            provider="ollama",
            model="m",
            outcome="ok",
            session_id="other",
            baseline_cost=1.25,
        ),
    )
    out = io.StringIO()
    status = {
        "session_id": "sess-1",
        "model": {"id": "claude-opus-4-8", "display_name": "Opus"},
        "workspace": {"current_dir": "/work"},
        "cost": {"total_cost_usd": 0.1},
    }
    assert run_statusline(io.StringIO(json.dumps(status)), out, claude_dirs) == 0
    assert out.getvalue() == (
        "hybrid-router | routed: ollama/deepseek-coder:33b (code-generation) | local 50% of 2 calls"
        " today | saved $1.25 today\n"
    )


def test_status_line_never_shows_a_traceback(claude_dirs, router_home):
    router_home.mkdir(parents=True, exist_ok=True)
    (router_home / "decisions.db").write_bytes(b"garbage" * 500)
    out = io.StringIO()
    assert run_statusline(io.StringIO("{}"), out, claude_dirs) == 0
    assert out.getvalue() == "hybrid-router | unavailable (DatabaseError)\n"


# --- the installed console script ------------------------------------------------------------


def test_installed_script_runs_the_hook_without_heavy_imports(claude_dirs):
    """The hot path never imports click, pydantic, sqlite-utils or httpx2 (nor json, re, typing)."""
    env = {**os.environ, **claude_dirs}
    # warm the routing-table cache first: the hot path is every prompt after the first
    subprocess.run(
        [SCRIPT, "hook", "UserPromptSubmit"],
        input=json.dumps(prompt("x")),
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", SCRIPT, "hook", "UserPromptSubmit"],
        input=json.dumps(prompt("write tests")),
        text=True,
        env=env,
        capture_output=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "hybrid_router.hooks.events" in imported  # the probe saw the hook's own imports
    heavy = {
        "click",
        "pydantic",
        "sqlite_utils",
        "httpx2",
        "mcp",
        "json",
        "re",
        "dataclasses",
        "typing",
        "pathlib",
        "hashlib",
        "sqlite3",
        "hybrid_router.config",
    }
    assert heavy.isdisjoint(imported), heavy & imported


def test_installed_script_hook_and_statusline_end_to_end(claude_dirs, router_home):
    register_mcp(claude_dirs)
    env = {**os.environ, **claude_dirs}
    done = subprocess.run(
        [SCRIPT, "hook", "UserPromptSubmit"],
        input=json.dumps(prompt("find where config is read")),
        text=True,
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert "file-operations" in json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
    status = subprocess.run(
        [SCRIPT, "statusline"],
        input=json.dumps({"session_id": "sess-1"}),
        text=True,
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert status.returncode == 0
    assert status.stdout.startswith(
        "hybrid-router | routed: ollama/qwen2.5-coder:7b (file-operations)"
    )
    help_text = subprocess.run(
        [SCRIPT, "hook", "--help"], text=True, env=env, capture_output=True, check=False
    )
    assert "Run the Claude Code hook for EVENT" in help_text.stdout


def test_the_hook_leaves_its_own_slash_command_alone(claude_dirs, router_home):
    """`/route-stats` asks for the numbers: it is not a prompt to classify, pin or count."""
    hook("UserPromptSubmit", prompt("/route-stats"), claude_dirs)
    hook("UserPromptSubmit", prompt("/route-stats 7d"), claude_dirs)
    conn = connect(router_home / "decisions.db")
    assert conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0
    hook("UserPromptSubmit", prompt("/review the parser"), claude_dirs)  # another command
    assert conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1
