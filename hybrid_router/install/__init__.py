"""Install the Claude Code integration into settings files, and take it out again exactly.

What gets installed comes only from ``settings-templates/`` (hooks.json, mcp-servers.json,
statusline.json, proxy-env.json, commands/route-stats.md). Where it goes:

- user scope: hooks, statusLine and the proxy ``env`` into ``$CLAUDE_CONFIG_DIR/settings.json``
  (else ``~/.claude/settings.json``); the MCP server into the top-level ``mcpServers`` of
  ``$CLAUDE_CONFIG_DIR/.claude.json`` (else ``~/.claude.json``); the slash command into
  ``$CLAUDE_CONFIG_DIR/commands/`` (else ``~/.claude/commands/``).
- project scope: ``<dir>/.claude/settings.json``, ``<dir>/.mcp.json`` and
  ``<dir>/.claude/commands/``.

Everything is merged into what is there (other keys, hooks, servers and key order survive), an
entry that is already present is not added twice, and nothing of the user's is ever replaced.
Each existing file gets a backup before it changes and is written atomically in its own
indentation style. What was added is recorded, per scope and per file, in
``<home>/installed.json``; `plan_uninstall` removes exactly those entries and nothing else.

`plan_install` and `plan_uninstall` compute a `Plan` (reading files, never writing) and `apply`
writes it; the click commands in `cli_install` print the plan's summary and diffs. This module is
the public entry; the work is done in:

- `install_targets`: where the files are for each scope, and the command word;
- `install_templates`: what gets installed, from ``settings-templates/``;
- `install_json`: JSON files read and written back in their own style;
- `install_merge` / `install_unmerge`: the plans for install and uninstall;
- `install_plan`: the `Plan` and `apply`;
- `install_files`: backups, atomic writes and diffs;
- `install_manifest`: the install record.
"""

from __future__ import annotations

from ..config.loading import templates_dir
from .files import BACKUP_INFIX, atomic_write, backup_path, unified_diff
from .json_files import JsonFile, read_json_file
from .manifest import (
    MANIFEST_FILENAME,
    MANIFEST_VERSION,
    manifest_path,
    read_manifest,
    update_manifest,
)
from .merge import plan_install
from .plan import FileChange, Plan, apply
from .targets import (
    COMMAND_FILENAME,
    SERVER_NAME,
    TOOL_WORD,
    CommandWord,
    InstallError,
    Scope,
    Targets,
    claude_config_dir,
    command_word,
    own_console_script,
    targets_for,
    user_settings_path,
)
from .templates import Templates, load_templates
from .unmerge import plan_uninstall

__all__ = [
    "BACKUP_INFIX",
    "COMMAND_FILENAME",
    "MANIFEST_FILENAME",
    "MANIFEST_VERSION",
    "SERVER_NAME",
    "TOOL_WORD",
    "CommandWord",
    "FileChange",
    "InstallError",
    "JsonFile",
    "Plan",
    "Scope",
    "Targets",
    "Templates",
    "apply",
    "atomic_write",
    "backup_path",
    "claude_config_dir",
    "command_word",
    "load_templates",
    "manifest_path",
    "own_console_script",
    "plan_install",
    "plan_uninstall",
    "read_json_file",
    "read_manifest",
    "targets_for",
    "templates_dir",
    "unified_diff",
    "update_manifest",
    "user_settings_path",
]
