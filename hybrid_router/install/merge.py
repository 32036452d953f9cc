"""`plan_install`: merge the templates into the settings files, adding only what is missing."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from .files import missing_dirs, sha256_of
from .json_files import JsonFile, expect_dict, ordered_equal, read_json_file
from .manifest import read_manifest
from .plan import FileChange, Plan
from .targets import (
    TOOL_WORD,
    InstallError,
    Scope,
    command_word,
    normal_command,
    targets_for,
    with_word,
)
from .templates import Templates, command_text_for, hooks_for, load_templates


def _matcher(group: Mapping[str, Any]) -> str:
    value = group.get("matcher")
    return "" if value in (None, "", "*") else str(value)


def _same_handler(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.get("type", "command") != b.get("type", "command"):
        return False
    if "command" in a or "command" in b:
        return normal_command(a.get("command")) == normal_command(b.get("command")) and (
            a.get("args") == b.get("args")
        )
    return ordered_equal(a, b)


def _handler_present(groups: list[Any], matcher: str, handler: Mapping[str, Any]) -> bool:
    for group in groups:
        if not isinstance(group, dict) or _matcher(group) != matcher:
            continue
        for existing in group.get("hooks") or []:
            if isinstance(existing, dict) and _same_handler(existing, handler):
                return True
    return False


def _same_server(a: Any, b: Mapping[str, Any]) -> bool:
    return (
        isinstance(a, dict)
        and normal_command(a.get("command")) == normal_command(b.get("command"))
        and a.get("args", []) == b.get("args", [])
    )


def _is_ours(status_line: Any, wanted: Mapping[str, Any]) -> bool:
    return isinstance(status_line, dict) and normal_command(
        status_line.get("command")
    ) == normal_command(wanted["command"])


def _has_status_line(path: Path) -> Any:
    try:
        return read_json_file(path).data.get("statusLine")
    except InstallError:
        return None


def _file_record(manifest_scope: Mapping[str, Any], path: Path) -> dict[str, Any]:
    return copy.deepcopy(manifest_scope.get("files", {}).get(str(path), {}))


def plan_install(
    scope: Scope = "user",
    *,
    project_dir: Path | None = None,
    proxy: bool = False,
    proxy_env: Mapping[str, str] | None = None,
    statusline: bool = True,
    environ: Mapping[str, str] | None = None,
    templates: Templates | None = None,
) -> Plan:
    """What `install` would change: reads every file first, so a bad one stops it before writes."""
    env = os.environ if environ is None else environ
    targets = targets_for(scope, project_dir, env)
    word = command_word(scope, env)
    tpl = templates or load_templates()
    manifest = read_manifest(env)
    previous = manifest["scopes"].get(targets.key, {})
    plan = Plan("install", targets, word, notes=list(word.notes))

    settings = read_json_file(targets.settings)
    mcp = read_json_file(targets.mcp)
    files: dict[str, Any] = copy.deepcopy(previous.get("files", {}))

    # settings.json: hooks, statusLine, env
    data = copy.deepcopy(settings.data)
    record = _file_record(previous, targets.settings)
    record.setdefault("kind", "settings")
    record.setdefault("created", not settings.exists)
    added = record.setdefault("added", {})
    created_keys: list[str] = record.setdefault("createdKeys", [])
    parts: list[str] = []

    hooks = _object_in(settings, data, "hooks", created_keys)
    added_events: list[str] = []
    for event, groups in hooks_for(tpl, word.shell).items():
        current = hooks.get(event)
        if current is not None and not isinstance(current, list):
            raise InstallError(f"{targets.settings}: hooks.{event} is not a list (nothing changed)")
        for group in groups:
            matcher = _matcher(group)
            fresh = [
                h for h in group.get("hooks", []) if not _handler_present(current or [], matcher, h)
            ]
            if not fresh:
                continue
            new_group = {**group, "hooks": fresh}
            if current is None:
                current = hooks[event] = []
                _add_unique(created_keys, f"hooks/{event}")
            current.append(new_group)
            _add_unique(added.setdefault("hooks", {}).setdefault(event, []), new_group)
            if event not in added_events:
                added_events.append(event)
    if added_events:
        parts.append("hooks " + ", ".join(added_events))
    elif "hooks" in created_keys and not hooks:
        del data["hooks"]
        created_keys.remove("hooks")

    if statusline:
        wanted = {**tpl.status_line, "command": with_word(tpl.status_line["command"], word.shell)}
        theirs = data.get("statusLine")
        elsewhere = [
            p
            for p in targets.statusline_elsewhere
            if (other := _has_status_line(p)) is not None and not _is_ours(other, wanted)
        ]
        if theirs is None and not elsewhere:
            data["statusLine"] = wanted
            added["statusLine"] = wanted
            parts.append("statusLine")
        elif _is_ours(theirs, wanted) or (theirs is None and not elsewhere):
            pass  # already ours
        else:
            where = targets.settings if theirs is not None else elsewhere[0]
            plan.notes.append(
                f"note: kept your statusLine in {where}; to use hybrid-router's, set "
                f'"statusLine": {json.dumps(wanted)}'
            )

    if proxy:
        env_block = _object_in(settings, data, "env", created_keys)
        added_env = added.setdefault("env", {})
        new_keys = []
        wanted_env = proxy_env if proxy_env is not None else tpl.proxy_env
        for key, value in wanted_env.items():
            if key not in env_block:
                env_block[key] = value
                added_env[key] = value
                new_keys.append(key)
            elif env_block[key] != value:
                plan.notes.append(
                    f"note: kept your env {key}={json.dumps(env_block[key])} in {targets.settings}"
                    f" (the proxy wants {json.dumps(value)})"
                )
        if not added_env:
            del added["env"]
        if new_keys:
            parts.append("env " + ", ".join(new_keys))
        elif "env" in created_keys and not env_block:
            del data["env"]
            created_keys.remove("env")

    if not ordered_equal(data, settings.data):
        _change(plan, settings, data, "add " + "; ".join(parts))
    if added or str(targets.settings) in files:
        files[str(targets.settings)] = record

    # MCP server
    data = copy.deepcopy(mcp.data)
    record = _file_record(previous, targets.mcp)
    record.setdefault("kind", "mcp")
    record.setdefault("created", not mcp.exists)
    added = record.setdefault("added", {})
    created_keys = record.setdefault("createdKeys", [])
    servers = expect_dict(mcp, "mcpServers")
    for name, server in tpl.mcp_servers.items():
        wanted = copy.deepcopy(server)
        if wanted.get("command") == TOOL_WORD:
            wanted["command"] = word.exec
        if servers is not None and name in servers:
            if not _same_server(servers[name], wanted):
                plan.notes.append(
                    f"note: kept the MCP server named {name!r} already in {targets.mcp} "
                    "(it is not hybrid-router's)"
                )
            continue
        if servers is None:
            data["mcpServers"] = {}
            _add_unique(created_keys, "mcpServers")
        servers = data["mcpServers"]
        servers[name] = wanted
        added.setdefault("mcpServers", {})[name] = wanted
        _change(
            plan,
            mcp,
            data,
            f"add MCP server {name!r}",
            mode=0o600 if targets.scope == "user" else None,
        )
    if added:
        files[str(targets.mcp)] = record

    # the slash command
    text = command_text_for(tpl, word.shell)
    record = _file_record(previous, targets.command)
    try:
        existing = targets.command.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot read {targets.command}: {exc}") from None
    if existing is None:
        plan.changes.append(FileChange(targets.command, None, text, "create /route-stats"))
        files[str(targets.command)] = {
            "kind": "command",
            "created": True,
            "sha256": sha256_of(text),
        }
    elif existing != text:
        if record.get("sha256") == sha256_of(existing):  # ours, from an older install: update it
            plan.changes.append(FileChange(targets.command, existing, text, "update /route-stats"))
            files[str(targets.command)] = {**record, "sha256": sha256_of(text)}
        else:
            plan.notes.append(
                f"note: kept your {targets.command} (it differs from hybrid-router's)"
            )

    for change in plan.changes:
        for directory in missing_dirs(change.path):
            if directory not in plan.dirs_to_create:
                plan.dirs_to_create.append(directory)
    created_dirs = list(previous.get("createdDirs", []))
    for directory in plan.dirs_to_create:
        _add_unique(created_dirs, str(directory))

    plan.manifest_entry = {
        "scope": targets.scope,
        **({"projectDir": str(targets.project_dir)} if targets.project_dir else {}),
        "installedAt": previous.get("installedAt") or _now_iso(),
        "version": __version__,
        "command": word.shell,
        "files": files,
        "createdDirs": created_dirs,
    }
    other = "user" if targets.scope == "project" else None
    if other and other in manifest["scopes"]:
        plan.notes.append(
            "note: hybrid-router is also installed at user scope; identical hooks run once, but "
            "if the command words differ they run twice"
        )
    return plan


def _change(
    plan: Plan, doc: JsonFile, data: dict[str, Any], summary: str, mode: int | None = None
) -> None:
    after = doc.dumps(data)
    for change in plan.changes:
        if change.path == doc.path:
            change.after = after
            change.summary += "; " + summary.removeprefix("add ")
            return
    if after != doc.text:
        plan.changes.append(FileChange(doc.path, doc.text, after, summary, mode=mode))


def _object_in(
    doc: JsonFile, data: dict[str, Any], key: str, created_keys: list[str]
) -> dict[str, Any]:
    """`data[key]`, created (and recorded as created by install) when `doc` has none."""
    if expect_dict(doc, key) is None:
        data[key] = {}
        _add_unique(created_keys, key)
    found: dict[str, Any] = data[key]
    return found


def _add_unique(items: list[Any], item: Any) -> None:
    if not any(ordered_equal(item, existing) for existing in items):
        items.append(item)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
