"""`hybrid-router install` / `uninstall`: real files under tmp_path, through click's CliRunner,
and the installed entries checked by the real Claude Code CLI."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from claude_cli import logging_wrapper, run_claude
from click.testing import CliRunner, Result
from fakes.fake_anthropic import FakeAnthropic, text

from hybrid_router import install as inst
from hybrid_router.cli import cli
from hybrid_router.config import default_config_path

VENV_BIN = Path(sys.executable).parent
SCRIPT = VENV_BIN / "hybrid-router"
EVENTS = ["SessionStart", "UserPromptSubmit", "Stop", "SessionEnd"]


@pytest.fixture
def claude_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """HOME and CLAUDE_CONFIG_DIR in tmp_path; PATH without this venv (so: absolute paths)."""
    home = tmp_path / "home"
    config = home / ".claude"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    return {
        "home": home,
        "config": config,
        "settings": config / "settings.json",
        "claude_json": config / ".claude.json",
        "command": config / "commands" / "route-stats.md",
    }


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def manifest() -> dict[str, Any]:
    return load(inst.manifest_path())


def hook_commands(settings: dict[str, Any], event: str) -> list[str]:
    return [h.get("command") for g in settings.get("hooks", {}).get(event, []) for h in g["hooks"]]


def write(path: Path, content: str | dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text_ = content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
    path.write_text(text_, encoding="utf-8")
    return text_


USER_SETTINGS = {
    "model": "sonnet",
    "permissions": {"allow": ["Bash(ls:*)"], "deny": ["Read(./.env)"]},
    "env": {"FOO": "bar"},
    "hooks": {
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard.sh"}]}],
    },
    "statusLine": {"type": "command", "command": "my-statusline"},
    "someFutureKey": {"nested": [1, 2, 3]},
}

# As Claude Code writes it: 2-space indent, no trailing newline, 0600.
CLAUDE_JSON_TEXT = json.dumps(
    {
        "numStartups": 12,
        "installMethod": "npm",
        "projects": {
            "/work/x": {"allowedTools": [], "mcpServers": {"local-one": {"command": "a"}}}
        },
        "mcpServers": {
            "github": {"type": "http", "url": "https://example.test/mcp"},
            "files": {"type": "stdio", "command": "npx", "args": ["files-mcp"], "env": {}},
        },
        "userID": "abc",
        "tipsHistory": {"x": 1},
    },
    indent=2,
)


# --- user scope ------------------------------------------------------------------------------


def test_fresh_user_install_creates_files_and_uninstall_deletes_them(claude_dirs):
    result = invoke("install")
    assert result.exit_code == 0, result.output

    settings = load(claude_dirs["settings"])
    for event in EVENTS:
        assert hook_commands(settings, event) == [f"{SCRIPT} hook {event}"]
    assert settings["statusLine"]["command"] == f"{SCRIPT} statusline"
    assert "env" not in settings  # no --proxy
    server = load(claude_dirs["claude_json"])["mcpServers"]["hybrid-router"]
    assert server == {"type": "stdio", "command": str(SCRIPT), "args": ["mcp"], "env": {}}
    assert stat.S_IMODE(claude_dirs["claude_json"].stat().st_mode) == 0o600
    command_text = claude_dirs["command"].read_text()
    assert f"!`{SCRIPT} stats" in command_text
    assert f"allowed-tools: Bash({SCRIPT} stats:*)" in command_text
    # formatting: 2-space indent and a trailing newline
    assert claude_dirs["settings"].read_text().startswith('{\n  "hooks"')
    assert claude_dirs["settings"].read_text().endswith("}\n")
    assert "not on PATH" in result.output
    assert "--- /dev/null" in result.output and "+++ b" in result.output

    record = manifest()["scopes"]["user"]
    files = record["files"]
    assert files[str(claude_dirs["settings"])]["created"] is True
    assert set(files[str(claude_dirs["settings"])]["added"]["hooks"]) == set(EVENTS)
    assert files[str(claude_dirs["claude_json"])]["added"]["mcpServers"]["hybrid-router"] == server
    assert files[str(claude_dirs["command"])]["created"] is True
    assert str(claude_dirs["config"]) in record["createdDirs"]

    result = invoke("uninstall")
    assert result.exit_code == 0, result.output
    assert not claude_dirs["config"].exists()  # every file and directory install created
    assert list(claude_dirs["home"].iterdir()) == []
    assert not inst.manifest_path().exists()


def test_merge_keeps_everything_and_uninstall_restores_bytes(claude_dirs):
    settings_before = write(claude_dirs["settings"], USER_SETTINGS)
    claude_dirs["claude_json"].write_text(CLAUDE_JSON_TEXT)
    claude_dirs["claude_json"].chmod(0o600)
    before = snapshot(claude_dirs["home"])

    result = invoke("install")
    assert result.exit_code == 0, result.output

    settings = load(claude_dirs["settings"])
    assert list(settings)[: len(USER_SETTINGS)] == list(USER_SETTINGS)  # key order kept
    for key in ("model", "permissions", "env", "statusLine", "someFutureKey"):
        assert settings[key] == USER_SETTINGS[key]
    assert hook_commands(settings, "Stop") == ["notify-send done", f"{SCRIPT} hook Stop"]
    assert settings["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]
    assert hook_commands(settings, "SessionStart") == [f"{SCRIPT} hook SessionStart"]
    assert "kept your statusLine" in result.output

    claude_json_text = claude_dirs["claude_json"].read_text()
    claude_json = json.loads(claude_json_text)
    original = json.loads(CLAUDE_JSON_TEXT)
    assert list(claude_json) == list(original)
    assert list(claude_json["mcpServers"]) == ["github", "files", "hybrid-router"]
    assert claude_json["projects"] == original["projects"]
    assert not claude_json_text.endswith("\n")  # its own style kept
    assert stat.S_IMODE(claude_dirs["claude_json"].stat().st_mode) == 0o600

    backups = sorted(claude_dirs["config"].glob("*.hybrid-router-backup-*"))
    assert [b.name.split(".hybrid-router-backup-")[0] for b in backups] == [
        ".claude.json",
        "settings.json",
    ]
    for backup in backups:
        name = backup.name.split(".hybrid-router-backup-")[0]
        assert backup.read_bytes() == before[f".claude/{name}"]
    assert "+++ b" in result.output and '"hybrid-router": {' in result.output

    # idempotent: nothing changes, no new backups, and it says so
    after_first = snapshot(claude_dirs["home"])
    manifest_first = inst.manifest_path().read_bytes()
    result = invoke("install")
    assert result.exit_code == 0, result.output
    assert "Nothing to change" in result.output
    assert snapshot(claude_dirs["home"]) == after_first
    assert inst.manifest_path().read_bytes() == manifest_first

    result = invoke("uninstall")
    assert result.exit_code == 0, result.output
    restored = {k: v for k, v in snapshot(claude_dirs["home"]).items() if "-backup-" not in k}
    assert restored == before
    assert claude_dirs["settings"].read_text() == settings_before
    assert not inst.manifest_path().exists()


def test_uninstall_removes_only_what_install_added(claude_dirs):
    # the user already has an identical handler for Stop: it is not added twice, and stays
    write(
        claude_dirs["settings"],
        {
            "hooks": {
                "Stop": [{"hooks": [{"type": "command", "command": "hybrid-router hook Stop"}]}]
            }
        },
    )
    assert invoke("install", "--no-statusline").exit_code == 0
    settings = load(claude_dirs["settings"])
    assert hook_commands(settings, "Stop") == ["hybrid-router hook Stop"]
    assert "statusLine" not in settings
    added = manifest()["scopes"]["user"]["files"][str(claude_dirs["settings"])]["added"]
    assert "Stop" not in added["hooks"]

    # after install the user adds things of their own, some looking like ours
    settings["hooks"]["SessionStart"].append(
        {"hooks": [{"type": "command", "command": "echo mine"}]}
    )
    settings["permissions"] = {"allow": ["Read"]}
    write(claude_dirs["settings"], settings)
    claude_json = load(claude_dirs["claude_json"])
    claude_json["mcpServers"]["later"] = {"command": "later-mcp"}
    claude_json["numStartups"] = 1
    write(claude_dirs["claude_json"], claude_json)

    result = invoke("uninstall")
    assert result.exit_code == 0, result.output
    settings = load(claude_dirs["settings"])
    assert settings == {
        "hooks": {
            "Stop": [{"hooks": [{"type": "command", "command": "hybrid-router hook Stop"}]}],
            "SessionStart": [{"hooks": [{"type": "command", "command": "echo mine"}]}],
        },
        "permissions": {"allow": ["Read"]},
    }
    assert load(claude_dirs["claude_json"]) == {
        "mcpServers": {"later": {"command": "later-mcp"}},
        "numStartups": 1,
    }


def test_uninstall_keeps_a_command_file_the_user_edited(claude_dirs):
    assert invoke("install").exit_code == 0
    claude_dirs["command"].write_text(claude_dirs["command"].read_text() + "\nMy own line.\n")
    result = invoke("uninstall")
    assert result.exit_code == 0, result.output
    assert "edited since install" in result.output
    assert claude_dirs["command"].read_text().endswith("My own line.\n")
    assert not claude_dirs["settings"].exists()


def test_command_word_is_bare_when_this_installation_is_on_path(claude_dirs, monkeypatch):
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}/usr/bin:/bin")
    result = invoke("install")
    assert result.exit_code == 0, result.output
    assert "(user scope; command: hybrid-router)" in result.output
    settings = load(claude_dirs["settings"])
    assert hook_commands(settings, "UserPromptSubmit") == ["hybrid-router hook UserPromptSubmit"]
    assert load(claude_dirs["claude_json"])["mcpServers"]["hybrid-router"]["command"] == (
        "hybrid-router"
    )
    template = (inst.templates_dir() / "commands" / "route-stats.md").read_text()
    assert claude_dirs["command"].read_text() == template


def test_without_claude_config_dir_uses_home(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    targets = inst.targets_for("user")
    assert targets.settings == tmp_path / ".claude" / "settings.json"
    assert targets.mcp == tmp_path / ".claude.json"
    assert targets.command == tmp_path / ".claude" / "commands" / "route-stats.md"


def test_dry_run_writes_nothing_but_shows_the_diff(claude_dirs):
    write(claude_dirs["settings"], USER_SETTINGS)
    before = snapshot(claude_dirs["home"])
    result = invoke("install", "--proxy", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was written." in result.output
    assert f"+++ b{claude_dirs['settings']}" in result.output
    assert '+    "ANTHROPIC_BASE_URL": "http://127.0.0.1:3000"' in result.output
    assert "--- /dev/null" in result.output  # .claude.json and the command would be created
    assert snapshot(claude_dirs["home"]) == before
    assert not inst.manifest_path().exists()

    assert invoke("install").exit_code == 0
    after = snapshot(claude_dirs["home"])
    result = invoke("uninstall", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"--- a{claude_dirs['settings']}" in result.output
    assert snapshot(claude_dirs["home"]) == after
    assert inst.manifest_path().exists()


def test_proxy_env_added_and_removed_alone(claude_dirs, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-proxy-holds-it")
    write(claude_dirs["settings"], {"env": {"FOO": "1", "CLAUDE_CODE_ATTRIBUTION_HEADER": "1"}})
    before = claude_dirs["settings"].read_bytes()
    result = invoke("install", "--proxy")
    assert result.exit_code == 0, result.output
    env = load(claude_dirs["settings"])["env"]
    assert env == {
        "FOO": "1",
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "1",  # the user's value is never replaced
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:3000",
        "ANTHROPIC_AUTH_TOKEN": "hybrid-router",
    }
    assert "kept your env CLAUDE_CODE_ATTRIBUTION_HEADER" in result.output
    added = manifest()["scopes"]["user"]["files"][str(claude_dirs["settings"])]["added"]["env"]
    assert list(added) == ["ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"]

    assert invoke("uninstall").exit_code == 0
    assert claude_dirs["settings"].read_bytes() == before


def test_bad_json_is_one_line_and_changes_nothing(claude_dirs):
    write(claude_dirs["settings"], '{\n  "hooks": {\n    "Stop": []\n  ,}\n}\n')
    before = snapshot(claude_dirs["home"])
    result = CliRunner().invoke(cli, ["install"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(claude_dirs["settings"]) in line
    assert "line 4, column" in line
    assert "Traceback" not in result.output
    assert snapshot(claude_dirs["home"]) == before
    assert not inst.manifest_path().exists()

    claude_dirs["settings"].unlink()
    write(claude_dirs["claude_json"], "[1, 2]")
    result = CliRunner().invoke(cli, ["install"])
    assert result.exit_code == 1
    assert "does not hold a JSON object" in result.stderr
    assert not claude_dirs["settings"].exists()


def test_uninstall_without_a_record_does_nothing(claude_dirs, tmp_path):
    write(claude_dirs["settings"], USER_SETTINGS)
    before = snapshot(claude_dirs["home"])
    project_args = ["--scope", "project", "--project-dir", str(tmp_path)]
    for args in (["uninstall"], ["uninstall", *project_args]):
        result = invoke(*args)
        assert result.exit_code == 0
        assert "not installed" in result.output and "nothing to do" in result.output
    assert snapshot(claude_dirs["home"]) == before


# --- project scope ---------------------------------------------------------------------------


def test_project_scope_merges_and_restores(claude_dirs, tmp_path, monkeypatch):
    project = tmp_path / "project"
    shared = write(
        project / ".claude" / "settings.json",
        {
            "permissions": {"allow": ["Bash(make:*)"]},
            "hooks": {
                "PostToolUse": [
                    {"matcher": "Edit", "hooks": [{"type": "command", "command": "fmt"}]}
                ]
            },
        },
    )
    mcp_json = write(project / ".mcp.json", {"mcpServers": {"db": {"command": "db-mcp"}}})
    before = snapshot(project)
    monkeypatch.chdir(project)

    result = invoke("install", "--scope", "project")  # default project dir: the cwd
    assert result.exit_code == 0, result.output
    assert "is not on PATH" in result.stderr  # project files use the bare name anyway
    settings = load(project / ".claude" / "settings.json")
    assert settings["permissions"] == {"allow": ["Bash(make:*)"]}
    assert list(settings["hooks"]) == ["PostToolUse", *EVENTS]
    assert hook_commands(settings, "Stop") == ["hybrid-router hook Stop"]
    assert settings["statusLine"]["command"] == "hybrid-router statusline"
    assert load(project / ".mcp.json")["mcpServers"] == {
        "db": {"command": "db-mcp"},
        "hybrid-router": {"type": "stdio", "command": "hybrid-router", "args": ["mcp"], "env": {}},
    }
    assert (project / ".claude" / "commands" / "route-stats.md").exists()
    assert f"project:{project}" in manifest()["scopes"]
    assert not claude_dirs["config"].exists()  # user files untouched

    result = invoke("uninstall", "--scope", "project", "--project-dir", str(project))
    assert result.exit_code == 0, result.output
    restored = {k: v for k, v in snapshot(project).items() if "-backup-" not in k}
    assert restored == before
    assert (project / ".claude" / "settings.json").read_text() == shared
    assert (project / ".mcp.json").read_text() == mcp_json
    assert not (project / ".claude" / "commands").exists()


def test_project_scope_does_not_override_a_user_status_line(claude_dirs, tmp_path):
    write(claude_dirs["settings"], {"statusLine": {"type": "command", "command": "mine"}})
    project = tmp_path / "p"
    project.mkdir()
    result = invoke("install", "--scope", "project", "--project-dir", str(project))
    assert result.exit_code == 0, result.output
    assert "statusLine" not in load(project / ".claude" / "settings.json")
    assert "kept your statusLine" in result.output


# --- the real Claude Code CLI reads what install wrote ----------------------------------------


def _init_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e.get("type") == "system" and e.get("subtype") == "init")


def test_real_cli_loads_a_project_install(claude_dirs, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    assert invoke("install", "--scope", "project", "--project-dir", str(project)).exit_code == 0

    log = tmp_path / "calls.log"
    logging_wrapper(tmp_path / "wrapper-bin", log)
    path = os.pathsep.join([str(tmp_path / "wrapper-bin"), str(VENV_BIN), "/usr/bin", "/bin"])
    with FakeAnthropic() as fake:
        fake.enqueue(text("Hi from the fake!"))
        result = run_claude(
            "say hi",
            base_url=fake.url,
            tmp_path=tmp_path,
            cwd=project,
            output_format="stream-json",
            env={"PATH": path},
        ).check()
    assert result.result == "Hi from the fake!"
    init = _init_event(result.events)
    assert "hybrid-router" in [s["name"] for s in init["mcp_servers"]]
    assert "route-stats" in init["slash_commands"]
    calls = log.read_text().splitlines()
    for event in ("SessionStart", "UserPromptSubmit", "Stop"):
        assert f"hook {event}" in calls
    assert "mcp" in calls


def test_real_cli_runs_route_stats_from_a_user_install(claude_dirs, tmp_path, monkeypatch):
    # run_claude's own HOME / CLAUDE_CONFIG_DIR; PATH without the venv, so absolute paths
    cli_home = tmp_path / "claude-home"
    monkeypatch.setenv("HOME", str(cli_home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(cli_home / ".claude"))
    assert invoke("install").exit_code == 0
    assert str(SCRIPT) in (cli_home / ".claude" / "commands" / "route-stats.md").read_text()

    with FakeAnthropic() as fake:
        fake.enqueue(text("Here are your stats."))
        result = run_claude(
            "/route-stats 24h",
            base_url=fake.url,
            tmp_path=tmp_path,
            output_format="stream-json",
        ).check()
    init = _init_event(result.events)
    assert "hybrid-router" in [s["name"] for s in init["mcp_servers"]]
    assert "route-stats" in init["slash_commands"]
    (request,) = fake.main_requests()
    sent = json.dumps(request.body["messages"])
    assert "<command-name>/route-stats</command-name>" in sent
    # the `!` line ran (with the absolute path permitted by allowed-tools) and the body followed
    assert "Above are the hybrid-router routing stats" in sent
    assert result.result == "Here are your stats."


def test_a_later_install_with_proxy_adds_to_the_record(claude_dirs, tmp_path):
    before = write(claude_dirs["settings"], USER_SETTINGS)
    assert invoke("install").exit_code == 0
    assert invoke("install", "--proxy").exit_code == 0
    added = manifest()["scopes"]["user"]["files"][str(claude_dirs["settings"])]["added"]
    assert set(added) == {"hooks", "env"}  # statusLine: the user has one
    assert load(claude_dirs["settings"])["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:3000"
    assert invoke("uninstall").exit_code == 0
    assert claude_dirs["settings"].read_text() == before

    result = CliRunner().invoke(
        cli, ["install", "--scope", "project", "--project-dir", str(tmp_path / "missing")]
    )
    assert result.exit_code == 1
    assert "no such project directory" in result.stderr


def test_install_proxy_writes_the_configured_address_and_the_banners_credentials(
    claude_dirs, router_home, monkeypatch
):
    """What `install --proxy` writes is what `hybrid-router proxy` says to use: the configured
    host and port (not a fixed 127.0.0.1:3000, where `claude -p` would hang), and no placeholder
    token when the proxy holds no Anthropic key (Claude Code's own login then passes through)."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    data = json.loads(default_config_path().read_text())
    data["proxy"]["port"] = 3999
    router_home.mkdir(parents=True, exist_ok=True)
    (router_home / "router-config.json").write_text(json.dumps(data))
    assert invoke("install", "--proxy").exit_code == 0
    env = load(claude_dirs["settings"])["env"]
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:3999"
    assert "ANTHROPIC_AUTH_TOKEN" not in env
    assert env["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"
