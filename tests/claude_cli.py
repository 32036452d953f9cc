"""Run the real Claude Code CLI (tests/node, pinned in package.json) offline, in a test.

The CLI talks to `base_url` (a fake Anthropic server or the project's proxy) with a throwaway
HOME and CLAUDE_CONFIG_DIR under `tmp_path`, no telemetry, no autoupdate, stdin from /dev/null
(see shared OBSERVED.md). The current PATH is kept, with this venv's bin directory in front, so
MCP servers and hooks given as console scripts are found.

    result = run_claude("say hi", base_url=fake.url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.json["result"] == "hi"
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
CLAUDE_BIN = NODE_DIR / "node_modules" / ".bin" / "claude"
MCP_INSPECTOR_BIN = NODE_DIR / "node_modules" / ".bin" / "mcp-inspector"
VENV_BIN = Path(sys.executable).parent  # not resolved: a venv's python is a symlink

# Variables from the developer's shell that would change what the CLI does or where it sends.
_DROP_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "OTEL_", "AWS_BEARER_TOKEN_BEDROCK")
_DROP_NAMES = (
    "CLAUDECODE",
    "IS_SANDBOX",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NODE_OPTIONS",
    "DEBUG",
)


def claude_binary() -> Path:
    """The pinned CLI's path; skips the test when `npm ci` was not run in tests/node."""
    if not CLAUDE_BIN.exists():
        pytest.skip(f"Claude Code CLI not installed: run `npm ci` in {NODE_DIR}")
    return CLAUDE_BIN


def mcp_inspector_binary() -> Path:
    """The pinned MCP Inspector's path; skips the test when it is missing."""
    if not MCP_INSPECTOR_BIN.exists():
        pytest.skip(f"MCP Inspector not installed: run `npm ci` in {NODE_DIR}")
    return MCP_INSPECTOR_BIN


@dataclass
class ClaudeResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration: float
    home: Path
    config_dir: Path
    cwd: Path
    json: Any = None  # parsed stdout for --output-format json
    events: list[dict[str, Any]] = field(default_factory=list)  # stream-json lines

    @property
    def result(self) -> str | None:
        """The final answer text (`result` field) in json / stream-json modes."""
        if isinstance(self.json, dict):
            return self.json.get("result")
        for event in reversed(self.events):
            if event.get("type") == "result":
                return event.get("result")
        return None

    def check(self) -> ClaudeResult:
        """Raise with the CLI's output when it failed."""
        if self.returncode != 0:
            raise AssertionError(
                f"claude exited {self.returncode}\nargs: {self.args}\n"
                f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
            )
        return self


def claude_env(
    base_url: str,
    tmp_path: Path,
    env: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, str], Path, Path]:
    """The environment for one CLI run: (env, home, config_dir).

    Keeps the current environment (PATH with the venv's bin first, HYBRID_ROUTER_HOME, ...)
    minus ANTHROPIC_*/CLAUDE_* leftovers; `env` entries override, a None value removes.
    """
    home = Path(tmp_path) / "claude-home"
    config_dir = home / ".claude"
    config_dir.mkdir(parents=True, exist_ok=True)
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROP_PREFIXES) and k not in _DROP_NAMES
    }
    path_parts = [str(VENV_BIN)] + [
        p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p and p != str(VENV_BIN)
    ]
    out.update(
        PATH=os.pathsep.join(path_parts),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY="sk-test",
        CLAUDE_CONFIG_DIR=str(config_dir),
        HOME=str(home),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        NO_COLOR="1",
        # Claude Code 2.1 connects MCP servers in the background, so a first request sent while
        # `hybrid-router mcp` is still starting (a busy machine) lacks its tools: wait for them.
        MCP_CONNECTION_NONBLOCKING="false",
    )
    for key, value in (env or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out, home, config_dir


def _as_file(value: str | os.PathLike[str] | Mapping[str, Any], target: Path) -> str:
    """A dict is written to `target` as JSON; a path or inline JSON string is passed as given."""
    if isinstance(value, Mapping):
        target.write_text(json.dumps(value, indent=2), encoding="utf-8")
        return str(target)
    return os.fspath(value)


def run_claude(
    prompt: str,
    *,
    base_url: str,
    tmp_path: Path,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    timeout: float = 90,
    settings: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    mcp_config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    strict_mcp_config: bool = True,
    cwd: str | os.PathLike[str] | None = None,
    output_format: str | None = "json",
) -> ClaudeResult:
    """Run `claude -p PROMPT` against `base_url` and return its output.

    `settings` / `mcp_config`: a dict (written to a file in tmp_path), a file path or inline
    JSON; `mcp_config` adds `--strict-mcp-config` unless `strict_mcp_config=False`.
    `output_format`: "json" (parsed into `.json`), "stream-json" (adds --verbose, parsed into
    `.events`), "text" or None (CLI default). `cwd` defaults to an empty `tmp_path/project`.
    The whole process group is killed on timeout (the CLI spawns MCP servers and hooks).
    """
    binary = claude_binary()
    tmp_path = Path(tmp_path)
    run_env, home, config_dir = claude_env(base_url, tmp_path, env)
    workdir = Path(cwd) if cwd is not None else tmp_path / "project"
    workdir.mkdir(parents=True, exist_ok=True)

    args = [str(binary), "-p", prompt]
    if output_format:
        args += ["--output-format", output_format]
        if output_format == "stream-json" and "--verbose" not in extra_args:
            args.append("--verbose")
    if settings is not None:
        args += ["--settings", _as_file(settings, tmp_path / "claude-settings.json")]
    if mcp_config is not None:
        args += ["--mcp-config", _as_file(mcp_config, tmp_path / "claude-mcp.json")]
        if strict_mcp_config:
            args.append("--strict-mcp-config")
    args += list(extra_args)

    started = time.monotonic()
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            args,
            stdin=devnull,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=run_env,
            start_new_session=True,
        )
        try:
            stdout_b, stderr_b = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout_b, stderr_b = proc.communicate()
            raise AssertionError(
                f"claude did not finish within {timeout}s\nargs: {args}\n"
                f"stdout:\n{stdout_b.decode(errors='replace')[-4000:]}\n"
                f"stderr:\n{stderr_b.decode(errors='replace')[-4000:]}"
            ) from None
        finally:
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()
        _kill_group(proc)  # leftovers (an MCP server that ignored stdin EOF, a stuck hook)
    duration = time.monotonic() - started

    stdout = stdout_b.decode("utf-8", errors="replace")
    stderr = stderr_b.decode("utf-8", errors="replace")
    result = ClaudeResult(
        args=args,
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        duration=duration,
        home=home,
        config_dir=config_dir,
        cwd=workdir,
    )
    if output_format == "json":
        try:
            result.json = json.loads(stdout)
        except ValueError:
            result.json = None
    elif output_format == "stream-json":
        for line in stdout.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                result.events.append(json.loads(line))
            except ValueError:
                continue
    return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def logging_wrapper(bin_dir: Path, log: Path) -> None:
    """A `hybrid-router` to put first on PATH that logs its arguments to `log`: hooks and the
    status line return at once (their effects are not under test where this is used);
    everything else runs the real console script."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "hybrid-router"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> '{log}'\n"
        'case "$1" in hook|statusline) cat >/dev/null; exit 0;; esac\n'
        f"exec '{VENV_BIN / 'hybrid-router'}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
