import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from claude_code_bodies import claude_code_body
from click.testing import CliRunner

from hybrid_router import __version__
from hybrid_router.cli import cli
from hybrid_router.log.database import connect
from hybrid_router.log.rows import DecisionRow, record


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_route_prompt_prints_the_decision():
    result = run("route", "grep for TODO in src")
    assert result.exit_code == 0
    assert "provider    ollama" in result.output
    assert "rule        file-operations" in result.output


def test_route_json_shape():
    result = run("route", "--json", "review the auth flow for vulnerabilities")
    data = json.loads(result.output)
    assert {"provider", "model", "rule", "reason", "complexity", "estimated_tokens"} <= set(data)
    assert (data["provider"], data["rule"]) == ("anthropic", "security")


def test_route_a_request_body_from_a_file_and_from_stdin(tmp_path):
    body = claude_code_body("explain the architecture", model="claude-haiku-4-5", tool_count=2)
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    from_file = json.loads(run("route", "--json", "--request", str(path)).output)
    from_stdin = json.loads(run("route", "--json", "--request", "-", input=json.dumps(body)).output)
    assert from_file == from_stdin
    assert from_file["rule"] == "background"


def test_route_accepts_a_captured_headers_and_body_pair(tmp_path):
    path = tmp_path / "capture.json"
    path.write_text(
        json.dumps(
            {
                "headers": {"X-Claude-Code-Session-Id": "s-1"},
                "body": claude_code_body("hi", tool_count=1),
            }
        )
    )
    result = run("route", "--log", "--request", str(path))
    assert result.exit_code == 0
    stats = json.loads(run("stats", "--json", "--recent", "1").output)
    assert stats["recent"][0]["session_id"] == "s-1"


def test_route_writes_nothing_without_log(router_home):
    run("route", "list files")
    assert not (router_home / "decisions.db").exists()
    run("route", "--log", "list files")
    stats = json.loads(run("stats", "--json").output)
    assert (stats["decisions"], stats["requests"]) == (1, 0)  # classified, no model called
    assert stats["classified"] == {"total": 1, "providers": {"ollama": 1}}
    assert stats["outcomes"] == {"routed": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "line 1 column 2: invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"model": "x"}', "'messages' array"),
    ],
)
def test_route_bad_request_file_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run("route", "--request", str(path))
    assert result.exit_code == 1
    assert message in result.output and str(path) in result.output
    assert "Traceback" not in result.output


def test_route_needs_exactly_one_input():
    assert run("route").exit_code == 2
    assert run("route", "x", "--request", "-").exit_code == 2


def test_init_writes_once_and_force_overwrites(router_home):
    first = run("init", "--profile", "seed")
    assert first.exit_code == 0
    config_file = router_home / "router-config.json"
    config_file.write_text(config_file.read_text().replace("qwen2.5-coder:7b", "mine:1b"))
    second = run("init")
    assert second.exit_code == 1 and "already exists" in second.output
    assert "mine:1b" in config_file.read_text()
    assert run("init", "--if-missing").exit_code == 0
    assert "mine:1b" in config_file.read_text()
    assert run("init", "--force").exit_code == 0
    assert "mine:1b" not in config_file.read_text()


def test_config_path_show_and_check(router_home, monkeypatch):
    assert run("config", "path").output.splitlines()[0] == str(router_home / "router-config.json")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-very-secret-value")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:11999")
    shown = run("config", "show")
    assert "sk-or-very-secret-value" not in shown.output
    data = json.loads(shown.output)
    assert data["config"]["providers"]["openrouter"]["apiKey"] == "set"
    assert data["config"]["providers"]["anthropic"]["apiKey"] == "not set"
    assert data["config"]["providers"]["ollama"]["effectiveBaseUrl"] == "http://127.0.0.1:11999"
    assert "embedded default" in data["source"]
    check = run("config", "check")
    assert check.exit_code == 0 and check.output.startswith("ok: embedded default: 6 routes")


def test_config_check_reports_the_broken_field(router_home):
    run("init")
    config_file = router_home / "router-config.json"
    data = json.loads(config_file.read_text())
    data["tiers"]["coder"]["contextWindow"] = "lots"
    config_file.write_text(json.dumps(data))
    result = run("config", "check")
    assert result.exit_code == 1
    assert f"{config_file}: tiers.coder.contextWindow expected" in result.output
    # every command that needs the config says the same, in one line
    routed = run("route", "hi")
    assert routed.exit_code == 1 and len(routed.output.strip().splitlines()) == 1


def test_stats_text_json_and_bad_period():
    run("route", "--log", "list files")
    run("route", "--log", "check for sql injection")
    text = run("stats", "--recent", "5")
    assert "2 decisions" in text.output and "file-operations" in text.output
    data = json.loads(run("stats", "--json", "--since", "1h").output)
    assert set(data["classified"]["providers"]) == {"ollama", "anthropic"}
    bad = run("stats", "--since", "someday")
    assert bad.exit_code == 2 and "invalid period 'someday'" in bad.output


def test_corrupt_log_is_a_clear_error(router_home):
    router_home.mkdir(parents=True)
    (router_home / "decisions.db").write_bytes(b"this is not a database" * 100)
    result = run("stats")
    assert result.exit_code == 1
    assert "cannot open the decision log" in result.output and "Traceback" not in result.output


def test_demo_routes_the_samples_and_shows_stats():
    result = run("demo")
    assert result.exit_code == 0
    assert "-> anthropic/" in result.output and "-> ollama/" in result.output
    assert "7 decisions" in result.output
    assert "Prompts classified without calling a model: 7 (ollama 4, anthropic 3)" in result.output


def test_installed_console_script_runs_as_a_real_process(router_home):
    script = shutil.which("hybrid-router", path=str(Path(sys.executable).parent))
    assert script, "the console script is installed next to the interpreter"
    env = {**os.environ, "HYBRID_ROUTER_HOME": str(router_home)}
    done = subprocess.run(
        [script, "route", "--json", "--log", "where is the retry logic defined?"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rule"] == "file-operations"
    with sqlite3.connect(router_home / "decisions.db") as conn:
        assert conn.execute("SELECT source, rule FROM decisions").fetchall() == [
            ("cli", "file-operations")
        ]


def test_unwritable_home_is_one_line_not_a_traceback(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = {**os.environ, "HYBRID_ROUTER_HOME": str(blocker / "home")}
    script = shutil.which("hybrid-router", path=str(Path(sys.executable).parent))
    done = subprocess.run(
        [script, "route", "--log", "list files"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_recent_decisions_follow_the_source_filter():
    run("route", "--log", "list files")
    from hybrid_router.core import home

    conn = connect(home.database_path())
    record(conn, DecisionRow(source="proxy", rule="r", provider="ollama", model="m", outcome="ok"))
    data = json.loads(run("stats", "--json", "--source", "cli", "--recent", "5").output)
    assert [row["source"] for row in data["recent"]] == ["cli"]


@pytest.mark.parametrize("command", ["proxy", "dashboard"])
def test_a_busy_port_is_one_error_line_and_no_banner(command, router_home):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(Path(sys.executable).parent / "hybrid-router"), command, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HYBRID_ROUTER_HOME": str(router_home)},
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use"
    ]
