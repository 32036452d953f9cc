"""The Claude Code plugin at the repository root (.claude-plugin/): its manifests, and what the
real CLI shows when it loads it with --plugin-dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from claude_cli import claude_binary, claude_env, logging_wrapper, run_claude
from fakes.fake_anthropic import FakeAnthropic, text

from hybrid_router import __version__

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_JSON = ROOT / ".claude-plugin" / "plugin.json"
MARKETPLACE_JSON = ROOT / ".claude-plugin" / "marketplace.json"
VENV_BIN = Path(sys.executable).parent
SCRIPT = VENV_BIN / "hybrid-router"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_plugin_version_is_the_package_version():
    plugin = _load(PLUGIN_JSON)
    assert plugin["name"] == "hybrid-router"
    assert plugin["version"] == __version__
    (entry,) = _load(MARKETPLACE_JSON)["plugins"]
    assert entry["name"] == plugin["name"]
    assert entry["source"] == "./"
    assert entry.get("version", __version__) == __version__


def test_plugin_components_are_the_settings_templates():
    plugin = _load(PLUGIN_JSON)
    assert plugin["commands"] == "./settings-templates/commands/"
    assert plugin["hooks"] == "./settings-templates/hooks.json"
    assert plugin["mcpServers"] == "./settings-templates/mcp-servers.json"
    for key in ("commands", "hooks", "mcpServers"):
        assert (ROOT / plugin[key]).exists(), plugin[key]
    assert "pip install claude-hybrid-router" in plugin["description"]


@pytest.mark.parametrize("target", [ROOT, PLUGIN_JSON, MARKETPLACE_JSON], ids=lambda p: p.name)
def test_claude_plugin_validate(tmp_path, target):
    env, _, _ = claude_env("http://127.0.0.1:9", tmp_path)  # HOME and config dir in tmp_path
    done = subprocess.run(
        [str(claude_binary()), "plugin", "validate", "--strict", str(target)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation passed" in done.stdout


def test_real_cli_loads_the_plugin(tmp_path):
    # A `hybrid-router` first on PATH that logs how it is called: the hooks return at once
    # (their effects are not under test here); `mcp` runs the real server.
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "wrapper-bin"
    logging_wrapper(bin_dir, log)
    path = os.pathsep.join([str(bin_dir), str(VENV_BIN), "/usr/bin", "/bin"])

    with FakeAnthropic() as fake:
        fake.enqueue(text("Hi from the fake!"))
        result = run_claude(
            "say hi",
            base_url=fake.url,
            tmp_path=tmp_path,
            output_format="stream-json",
            extra_args=["--plugin-dir", str(ROOT)],
            env={"PATH": path},
        ).check()
    assert result.result == "Hi from the fake!"

    init = next(
        e for e in result.events if e.get("type") == "system" and e.get("subtype") == "init"
    )
    assert {"name": "hybrid-router", "path": str(ROOT), "source": "hybrid-router@inline"} in (
        init["plugins"]
    )
    servers = {s["name"]: s["status"] for s in init["mcp_servers"]}
    assert "plugin:hybrid-router:hybrid-router" in servers
    assert "hybrid-router:route-stats" in init["slash_commands"]
    if servers["plugin:hybrid-router:hybrid-router"] == "connected":
        assert any(t.startswith("mcp__plugin_hybrid-router_hybrid-router__") for t in init["tools"])

    # the plugin's hooks are registered: Claude Code ran each command from hooks.json
    calls = log.read_text().splitlines()
    for event in ("SessionStart", "UserPromptSubmit", "Stop"):
        assert f"hook {event}" in calls
    assert "mcp" in calls
    started = [e["hook_event"] for e in result.events if e.get("subtype") == "hook_started"]
    assert "SessionStart" in started
