"""`hybrid-router setup` against the fake Ollama, with HOME, CLAUDE_CONFIG_DIR and the tool's home
all under tmp_path (the real ~/.claude and ~/.hybrid-router are never touched)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fakes.fake_ollama import FakeModel, FakeOllama

from hybrid_router.cli import cli, hardware, setup_flow
from hybrid_router.cli.setup_flow import PullProgress

FAST, CODER, REASONING = "qwen2.5-coder:7b", "deepseek-coder:33b", "llama3:70b"
OPENROUTER_SECRET = "sk-or-v1-setup-secret-0123456789abcdef"
ANTHROPIC_SECRET = "sk-ant-setup-secret-0123456789abcdef"
DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """HOME and CLAUDE_CONFIG_DIR in tmp_path, no `ollama` on PATH, cloud URLs that go nowhere."""
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(user_home / ".claude"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HYBRID_ROUTER_OPENROUTER_URL", f"{DEAD_URL}/v1")
    monkeypatch.setenv("HYBRID_ROUTER_ANTHROPIC_URL", DEAD_URL)
    monkeypatch.setattr(setup_flow, "interactive", lambda: False)
    return {"home": user_home, "claude": user_home / ".claude", "bin": bin_dir}


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """The fast model installed; the coder and reasoning models only in the registry."""
    with FakeOllama(
        models=[FakeModel(FAST)],
        registry=[FakeModel(CODER, size=19_000_000_000), FakeModel(REASONING, size=40_000_000_000)],
    ) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


@pytest.fixture
def ready_ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """Every model of the default config installed."""
    with FakeOllama(models=[FakeModel(FAST), FakeModel(CODER), FakeModel(REASONING)]) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


def setup(*args: str, input: str | None = None) -> Result:
    """`hybrid-router setup`, with the seed profile (the fakes' models) unless a test picks."""
    if "--profile" not in args and "--memory-gb" not in args:
        args = ("--profile", "seed", *args)
    return CliRunner().invoke(cli, ["setup", *args], input=input, catch_exceptions=False)


def pulls(server: FakeOllama) -> list[str]:
    return [r.body["model"] for r in server.requests_to("/api/pull")]


# --- Ollama found / missing ----------------------------------------------------------------------


def test_found_with_version_and_models(ready_ollama: FakeOllama, router_home: Path) -> None:
    result = setup("--no-pull", "--no-install")
    out = result.output
    assert result.exit_code == 0, out
    assert f"Ollama 0.14.2 at {ready_ollama.url} (ollama): 3 models installed: " in out
    for model in (FAST, CODER, REASONING):
        assert model in out
    assert "all installed" in out
    # the doctor summary, with the tool-call round trips by default
    assert "== Doctor\n" in out
    assert f"ollama (ollama) {ready_ollama.url}: reachable, Ollama 0.14.2" in out
    assert "All 4 tiers usable." in out
    assert ready_ollama.requests_to("/api/chat")  # the tool probe ran
    assert (router_home / "state" / "probe.json").exists()  # saved for the proxy, as doctor does
    assert "Setup complete" in out
    assert pulls(ready_ollama) == []
    assert json.loads((router_home / "router-config.json").read_text())["tiers"]["fast"]


def test_doctor_fast_mode_and_no_doctor(ready_ollama: FakeOllama) -> None:
    result = setup("--no-pull", "--no-install", "--no-tools")
    assert result.exit_code == 0
    assert "== Doctor (no tool-call round trips)" in result.output
    assert ready_ollama.requests_to("/api/chat") == []
    skipped = setup("--no-pull", "--no-install", "--no-doctor")
    assert skipped.exit_code == 0 and "== Doctor" not in skipped.output


def test_missing_ollama_prints_install_instructions(
    router_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeOllama().start()
    url = server.url
    server.down()  # connections to its port are refused from now on
    monkeypatch.setenv("OLLAMA_HOST", url)
    result = setup("--pull", "--no-install", "--no-tools")
    out = result.output
    assert result.exit_code == setup_flow.EXIT_OLLAMA_MISSING == 3
    assert f"Ollama is not reachable at {url}" in out
    assert "curl -fsSL https://ollama.com/install.sh | sh" in out
    assert "brew install ollama" in out
    assert "ollama serve" in out
    assert "not pulled: Ollama is not reachable" in out
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: Ollama is not reachable at {url}")
    )
    # the steps that need no Ollama still ran
    assert (router_home / "router-config.json").exists()
    assert (router_home / ".env").exists()


def test_installed_but_not_running_says_start_it(
    sandbox: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_binary = sandbox["bin"] / "ollama"
    fake_binary.write_text("#!/bin/sh\nexit 0\n")
    fake_binary.chmod(0o755)
    monkeypatch.setenv("OLLAMA_HOST", DEAD_URL)
    result = setup("--no-pull", "--no-install", "--no-doctor")
    assert result.exit_code == 3
    assert f"The `ollama` command is installed ({fake_binary})" in result.output
    assert "ollama serve" in result.output
    assert "install.sh" not in result.output


def test_something_else_on_the_port_is_not_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama() as server:
        server.fail(404, "no such route", path="/api/version")
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        result = setup("--no-pull", "--no-install", "--no-doctor")
    assert result.exit_code == 3
    assert "something answers there (HTTP 404) but it is not Ollama" in result.output


# --- pulling -------------------------------------------------------------------------------------


def test_pull_shows_progress(ollama: FakeOllama) -> None:
    result = setup("--pull", "--no-install", "--no-tools")
    assert result.exit_code == 0, result.output
    assert pulls(ollama) == [CODER, REASONING]  # only the missing ones, in tier order
    assert ollama.model(CODER) is not None and ollama.model(REASONING) is not None
    progress = [line for line in result.stderr.splitlines() if line.startswith(f"  {CODER}: ")]
    assert [line.rsplit("(", 1)[1] for line in progress] == ["25%)", "50%)", "75%)", "100%)"]
    assert progress[0].startswith(f"  {CODER}: 4.7 GB of 19.0 GB (25%)")
    assert f"  pulled {CODER} (19.0 GB)" in result.stdout
    assert f"  pulled {REASONING} (40.0 GB)" in result.stdout
    assert "All 4 tiers usable." in result.output


def test_no_pull_pulls_nothing(ollama: FakeOllama) -> None:
    result = setup("--no-pull", "--no-install", "--no-tools")
    assert pulls(ollama) == []
    assert f"{CODER:<28} missing" in result.output
    assert f"not pulled; later: `ollama pull <model>` for {CODER}, {REASONING}" in result.output
    assert result.exit_code == setup_flow.EXIT_NOT_READY == 4
    assert "Error: setup finished, but not ready" in result.stderr


def test_without_a_terminal_or_flag_nothing_is_pulled(ollama: FakeOllama) -> None:
    result = setup("--no-install", "--no-doctor")
    assert pulls(ollama) == []
    assert "skipped: not an interactive terminal (pass --pull or --no-pull)" in result.output
    assert result.exit_code == 4
    assert f"models not installed: {CODER}, {REASONING}" in result.stderr


def test_interactive_prompts(
    ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch, sandbox: dict[str, Path]
) -> None:
    monkeypatch.setattr(setup_flow, "interactive", lambda: True)
    declined = setup("--no-doctor", input="n\nn\n")
    assert (
        f"Pull 2 models from Ollama's library ({CODER}, {REASONING})? 59 GB to download."
        in declined.output
    )
    assert (
        "Install the hooks, MCP server, status line and /route-stats into Claude Code "
        "(user scope)?" in declined.output
    )
    assert pulls(ollama) == [] and not sandbox["claude"].exists()
    accepted = setup("--no-doctor", "--no-install", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert pulls(ollama) == [CODER, REASONING]


def test_failed_pull_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama(models=[FakeModel(FAST), FakeModel(CODER)]) as server:  # llama3:70b unknown
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        result = setup("--pull", "--no-install", "--no-doctor")
    assert result.exit_code == 4
    assert (
        f"error: cannot pull {REASONING}: pull model manifest: file does not exist" in result.stderr
    )
    assert f"not ready: could not pull {REASONING}" in result.stderr


def test_progress_bar_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    ticks = iter([0.0, 0.05, 0.2, 0.4])
    bar = PullProgress("m:1b", tty=True, clock=lambda: next(ticks))
    bar.update(0, 2_000_000_000, "pulling")
    bar.update(500_000_000, 2_000_000_000, "pulling")  # within 0.1 s: not redrawn
    bar.update(1_000_000_000, 2_000_000_000, "pulling")
    bar.update(2_000_000_000, 2_000_000_000, "pulling")
    bar.close()
    err = capsys.readouterr().err
    frames = err.split("\r\x1b[K")[1:]
    assert len(frames) == 3
    assert frames[1] == "  m:1b [###############...............] 1.0 GB of 2.0 GB (50%)"
    assert frames[2].endswith("(100%)\n")


# --- config, .env, keys --------------------------------------------------------------------------


def test_config_written_like_init(ready_ollama: FakeOllama, router_home: Path) -> None:
    config = router_home / "router-config.json"
    router_home.mkdir(parents=True)
    mine = json.loads((Path(setup_flow.home.templates_path()) / "router-config.json").read_text())
    mine["outputReserveTokens"] = 1234
    config.write_text(json.dumps(mine))
    kept = setup("--no-pull", "--no-install", "--no-doctor")
    assert f"kept existing config: {config}" in kept.output
    assert json.loads(config.read_text())["outputReserveTokens"] == 1234
    forced = setup("--no-pull", "--no-install", "--no-doctor", "--force")
    backups = list(router_home.glob("router-config.json.hybrid-router-backup-*"))
    assert [json.loads(b.read_text())["outputReserveTokens"] for b in backups] == [1234]
    assert f"backed up {config} to {backups[0]}" in forced.output
    assert f"wrote {config} (profile seed, needs 73.9 GB)" in forced.output
    assert json.loads(config.read_text())["outputReserveTokens"] == 4096


def test_bad_config_is_one_error_line(ready_ollama: FakeOllama, router_home: Path) -> None:
    router_home.mkdir(parents=True)
    (router_home / "router-config.json").write_text("{oops")
    result = CliRunner().invoke(cli, ["setup", "--no-pull", "--no-install"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "invalid JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_env_template_written_once_with_mode_600(
    ready_ollama: FakeOllama, router_home: Path
) -> None:
    env = router_home / ".env"
    first = setup("--no-pull", "--no-install", "--no-doctor")
    assert f"wrote {env} (mode 600)" in first.output
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    template = (Path(setup_flow.home.templates_path()) / ".env.example").read_text()
    assert env.read_text() == template
    env.write_text("OPENROUTER_API_KEY=mine\n")
    second = setup("--no-pull", "--no-install", "--no-doctor")
    assert f"kept existing {env}" in second.output
    assert env.read_text() == "OPENROUTER_API_KEY=mine\n"
    env.chmod(0o644)
    loose = setup("--no-pull", "--no-install", "--no-doctor")
    assert f"mode 644 lets others read it: chmod 600 {env}" in loose.output
    assert stat.S_IMODE(env.stat().st_mode) == 0o644  # reported, never changed behind your back


def test_keys_reported_without_values(
    ready_ollama: FakeOllama, router_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_SECRET)
    router_home.mkdir(parents=True)
    (router_home / ".env").write_text(f"ANTHROPIC_API_KEY={ANTHROPIC_SECRET}\n")
    # doctor too: the keys make it try the (dead) cloud URLs
    result = setup("--no-pull", "--no-install", "--no-tools")
    out = result.output
    assert "OPENROUTER_API_KEY   present (environment)" in out
    assert "ANTHROPIC_API_KEY    present (.env)" in out
    assert OPENROUTER_SECRET not in out and ANTHROPIC_SECRET not in out
    assert OPENROUTER_SECRET[:12] not in out and ANTHROPIC_SECRET[:12] not in out


def test_missing_keys(ready_ollama: FakeOllama, router_home: Path) -> None:
    result = setup("--no-pull", "--no-install", "--no-doctor")
    env = router_home / ".env"
    assert f"OPENROUTER_API_KEY   missing: add it to {env}" in result.output
    assert f"ANTHROPIC_API_KEY    missing: add it to {env}" in result.output
    assert result.exit_code == 0  # keys are optional


# --- install -------------------------------------------------------------------------------------


def _settings(sandbox: dict[str, Path]) -> dict[str, Any]:
    return json.loads((sandbox["claude"] / "settings.json").read_text())


def test_install_into_the_sandboxed_claude_config(
    ready_ollama: FakeOllama, sandbox: dict[str, Path]
) -> None:
    result = setup("--no-pull", "--install", "--no-doctor")
    assert result.exit_code == 0, result.output
    assert "hybrid-router install (user scope" in result.output
    hooks = _settings(sandbox)["hooks"]
    assert set(hooks) == {"SessionStart", "UserPromptSubmit", "Stop", "SessionEnd"}
    claude_json = json.loads((sandbox["claude"] / ".claude.json").read_text())
    assert "hybrid-router" in claude_json["mcpServers"]
    assert not (sandbox["home"] / ".claude.json").exists()  # CLAUDE_CONFIG_DIR wins


def test_install_project_scope(
    ready_ollama: FakeOllama,
    sandbox: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    result = setup("--no-pull", "--install", "--scope", "project", "--no-doctor")
    assert result.exit_code == 0, result.output
    assert (project / ".claude" / "settings.json").exists()
    assert (project / ".mcp.json").exists()
    assert not sandbox["claude"].exists()


def test_no_install_writes_nothing_to_claude(
    ready_ollama: FakeOllama, sandbox: dict[str, Path]
) -> None:
    result = setup("--no-pull", "--no-install", "--no-doctor")
    assert result.exit_code == 0
    assert "not installed; later: hybrid-router install --scope user" in result.output
    assert not sandbox["claude"].exists()


def test_yes_accepts_the_defaults(ollama: FakeOllama, sandbox: dict[str, Path]) -> None:
    result = setup("--yes", "--no-tools")
    assert result.exit_code == 0, result.output
    assert pulls(ollama) == [CODER, REASONING]
    assert _settings(sandbox)["hooks"]
    overridden = setup("--yes", "--no-pull", "--no-install", "--no-doctor")
    assert overridden.exit_code == 0
    assert pulls(ollama) == [CODER, REASONING]  # nothing more


# --- hardware and model profile ------------------------------------------------------------------


@pytest.fixture
def gpu_16gb(sandbox: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A stand-in `nvidia-smi` reporting one 16 GB card, and 32 GiB of RAM."""
    smi = sandbox["bin"] / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA GeForce RTX 5060 Ti, 16311'\n")
    smi.chmod(0o755)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       33554432 kB\n")
    monkeypatch.setattr(hardware, "MEMINFO", str(meminfo))


def test_setup_shows_the_hardware_and_pulls_the_profiles_models(
    gpu_16gb: None, router_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nine = "qwen3.5:9b"
    with FakeOllama(models=[], registry=[FakeModel(nine, size=6_600_000_000)]) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        result = CliRunner().invoke(
            cli, ["setup", "--pull", "--no-install", "--no-doctor"], catch_exceptions=False
        )
        assert pulls(server) == [nine]  # its profile's model, once (three tiers share it)
    out = result.output
    assert result.exit_code == 0, out
    assert "== Hardware and profile\n" in out
    assert "  GPU: NVIDIA GeForce RTX 5060 Ti: 17.1 GB VRAM (nvidia-smi)" in out
    assert "  RAM: 34.4 GB (/proc/meminfo)" in out
    assert "  memory: NVIDIA GeForce RTX 5060 Ti: 17.1 GB VRAM (nvidia-smi) -> " in out
    assert "profile 16gb (needs 11.4 GB; 32gb would need 29.2 GB)" in out
    config = router_home / "router-config.json"
    assert f"  wrote {config} (profile 16gb, needs 11.4 GB)" in out
    assert json.loads(config.read_text())["profile"] == "16gb"
    assert f"  {nine:<28} missing    fast, coder, reasoning" in out
    assert f"  pulled {nine} (6.6 GB)" in out


def test_an_existing_config_is_switched_only_with_consent_or_force(
    ready_ollama: FakeOllama, router_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router_home.mkdir(parents=True)
    config = router_home / "router-config.json"
    mine = json.loads((Path(setup_flow.home.templates_path()) / "router-config.json").read_text())
    mine.pop("profile")
    config.write_text(json.dumps(mine))  # no profile recorded
    flags = ("--profile", "8gb", "--no-pull", "--no-install", "--no-doctor")
    kept = setup(*flags, "--yes")  # --yes accepts pulls and installs, never replaces a config
    assert (
        f"kept existing config: {config} (no profile recorded); to switch to profile 8gb (a "
        "backup is kept): hybrid-router setup --force, or hybrid-router init --profile 8gb --force"
    ) in kept.output
    assert "profile" not in json.loads(config.read_text())
    monkeypatch.setattr(setup_flow, "interactive", lambda: True)
    declined = setup(*flags, input="n\n")
    assert f"Switch {config} (no profile recorded) to profile 8gb? A backup is kept" in (
        declined.output
    )
    assert "profile" not in json.loads(config.read_text())
    accepted = setup(*flags, input="y\n")
    assert json.loads(config.read_text())["profile"] == "8gb"
    backups = list(router_home.glob("router-config.json.hybrid-router-backup-*"))
    assert len(backups) == 1 and f"backed up {config} to {backups[0]}" in accepted.output
    again = setup(*flags)
    assert f"kept existing config: {config} (profile 8gb)" in again.output
