"""Where the Claude Code files are for each scope, and the word the installed commands start with.

Also the error every install module raises for a user-facing problem.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Scope = Literal["user", "project"]

TOOL_WORD = "hybrid-router"  # every template command starts with this bare word
SERVER_NAME = "hybrid-router"
COMMAND_FILENAME = "route-stats.md"


class InstallError(Exception):
    """A user-facing problem (bad JSON in a settings file, unexpected shape): one line."""


# --- where things go -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    scope: Scope
    key: str  # the manifest key: "user" or "project:<absolute dir>"
    settings: Path
    mcp: Path
    command: Path
    project_dir: Path | None = None
    # other settings files whose statusLine would be overridden by ours (project scope)
    statusline_elsewhere: tuple[Path, ...] = ()


def claude_config_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    return Path(configured).expanduser() if configured else None


def _user_home(environ: Mapping[str, str]) -> Path:
    configured = environ.get("HOME", "").strip()
    return Path(configured) if configured else Path.home()


def user_settings_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    config_dir = claude_config_dir(env)
    return (config_dir or _user_home(env) / ".claude") / "settings.json"


def targets_for(
    scope: Scope, project_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Targets:
    env = os.environ if environ is None else environ
    if scope == "user":
        config_dir = claude_config_dir(env)
        base = config_dir or _user_home(env) / ".claude"
        claude_json = (config_dir or _user_home(env)) / ".claude.json"
        return Targets(
            scope="user",
            key="user",
            settings=base / "settings.json",
            mcp=claude_json,
            command=base / "commands" / COMMAND_FILENAME,
        )
    root = Path(project_dir if project_dir is not None else Path.cwd()).resolve()
    return Targets(
        scope="project",
        key=f"project:{root}",
        settings=root / ".claude" / "settings.json",
        mcp=root / ".mcp.json",
        command=root / ".claude" / "commands" / COMMAND_FILENAME,
        project_dir=root,
        statusline_elsewhere=(root / ".claude" / "settings.local.json", user_settings_path(env)),
    )


# --- the command word ----------------------------------------------------------------------------


def own_console_script() -> Path:
    """The `hybrid-router` script of this installation: next to the interpreter running us."""
    name = "hybrid-router.exe" if os.name == "nt" else "hybrid-router"
    return Path(sys.executable).parent / name  # not resolved: a venv's python is a symlink


def _same_file(a: str | Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@dataclass(frozen=True)
class CommandWord:
    shell: str  # for shell commands (hooks, statusLine, the slash command): quoted if needed
    exec: str  # for the MCP server's `command` (no shell)
    notes: tuple[str, ...] = ()


def command_word(scope: Scope, environ: Mapping[str, str] | None = None) -> CommandWord:
    """The bare name when `hybrid-router` on PATH is this installation, else the script's path.

    Project files are shared, so project scope always uses the bare name (and warns when it is
    not on PATH).
    """
    env = os.environ if environ is None else environ
    found = shutil.which(TOOL_WORD, path=env.get("PATH", os.defpath))
    script = own_console_script()
    same = found is not None and script.exists() and _same_file(found, script)
    if scope == "project":
        if found is None:
            note = (
                f"warning: `{TOOL_WORD}` is not on PATH; the project's hooks, MCP server and "
                f"/route-stats call it by name (install it with pipx or pip, or add "
                f"{script.parent} to PATH)"
            )
            return CommandWord(TOOL_WORD, TOOL_WORD, (note,))
        if not same and script.exists():
            note = (
                f"warning: `{TOOL_WORD}` on PATH is {found}, not this installation ({script}); "
                "the project files call whichever is first on PATH"
            )
            return CommandWord(TOOL_WORD, TOOL_WORD, (note,))
        return CommandWord(TOOL_WORD, TOOL_WORD)
    if same or (found is not None and not script.exists()):
        return CommandWord(TOOL_WORD, TOOL_WORD)
    if script.exists():
        reason = "is not on PATH" if found is None else f"on PATH is another installation ({found})"
        return CommandWord(
            shlex.quote(str(script)),
            str(script),
            (f"note: `{TOOL_WORD}` {reason}: the settings call {script}",),
        )
    return CommandWord(
        TOOL_WORD,
        TOOL_WORD,
        (f"warning: `{TOOL_WORD}` is not on PATH; the hooks will fail until it is",),
    )


def with_word(command: str, word: str) -> str:
    if command == TOOL_WORD or command.startswith(TOOL_WORD + " "):
        return word + command[len(TOOL_WORD) :]
    return command


def normal_command(command: Any) -> Any:
    """A command with its program word reduced to `hybrid-router` when it is ours (any path)."""
    if not isinstance(command, str):
        return command
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if words and Path(words[0]).name in (TOOL_WORD, TOOL_WORD + ".exe"):
        words[0] = TOOL_WORD
    return words
