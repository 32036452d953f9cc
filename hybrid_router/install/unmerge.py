"""`plan_uninstall`: take out exactly what the manifest says install added, and nothing else."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .files import sha256_of
from .json_files import ordered_equal, read_json_file
from .manifest import read_manifest
from .plan import FileChange, Plan
from .targets import InstallError, Scope, targets_for


def plan_uninstall(
    scope: Scope = "user",
    *,
    project_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Plan | None:
    """What `uninstall` would change; None when the manifest has no entry for this scope."""
    env = os.environ if environ is None else environ
    targets = targets_for(scope, project_dir, env)
    entry = read_manifest(env)["scopes"].get(targets.key)
    if entry is None:
        return None
    plan = Plan("uninstall", targets, None)
    for name, record in entry.get("files", {}).items():
        path = Path(name)
        kind = record.get("kind")
        if kind == "command":
            _uninstall_command(plan, path, record)
        elif kind in ("settings", "mcp"):
            _uninstall_json(plan, path, record)
    for directory in sorted(entry.get("createdDirs", []), key=len, reverse=True):
        plan.dirs_to_remove.append(Path(directory))
    plan.manifest_entry = None
    return plan


def _uninstall_command(plan: Plan, path: Path, record: Mapping[str, Any]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot read {path}: {exc}") from None
    if not record.get("created"):
        return
    if sha256_of(text) == record.get("sha256"):
        plan.changes.append(FileChange(path, text, None, "delete /route-stats", backup=False))
    else:
        plan.notes.append(f"warning: kept {path}: it was edited since install")


def _uninstall_json(plan: Plan, path: Path, record: Mapping[str, Any]) -> None:
    doc = read_json_file(path)
    if not doc.exists:
        return
    data = copy.deepcopy(doc.data)
    added = record.get("added", {})
    removed: list[str] = []

    hooks = data.get("hooks")
    for event, groups in added.get("hooks", {}).items():
        current = hooks.get(event) if isinstance(hooks, dict) else None
        for group in groups:
            index = _last_index(current, group)
            if index is None or current is None:
                continue
            del current[index]
            removed.append(f"hook {event}")
    if "statusLine" in added:
        if ordered_equal(data.get("statusLine"), added["statusLine"]):
            del data["statusLine"]
            removed.append("statusLine")
        elif "statusLine" in data:
            plan.notes.append(
                f"warning: kept the statusLine in {path}: it was changed since install"
            )
    env_block = data.get("env")
    for key, value in added.get("env", {}).items():
        if not isinstance(env_block, dict) or key not in env_block:
            continue
        if env_block[key] == value:
            del env_block[key]
            removed.append(f"env {key}")
        else:
            plan.notes.append(f"warning: kept env {key} in {path}: it was changed since install")
    servers = data.get("mcpServers")
    for name, server in added.get("mcpServers", {}).items():
        if isinstance(servers, dict) and ordered_equal(servers.get(name), server):
            del servers[name]
            removed.append(f"MCP server {name!r}")
        elif isinstance(servers, dict) and name in servers:
            plan.notes.append(
                f"warning: kept the MCP server {name!r} in {path}: it was changed since install"
            )

    # containers install created, now empty: deepest first
    for key in sorted(record.get("createdKeys", []), key=lambda k: k.count("/"), reverse=True):
        *parents, last = key.split("/")
        holder: Any = data
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and holder.get(last) in ({}, []):
            del holder[last]

    if ordered_equal(data, doc.data):
        return
    summary = "remove " + ", ".join(dict.fromkeys(removed)) if removed else "tidy up"
    if record.get("created") and not data:
        plan.changes.append(
            FileChange(path, doc.text, None, summary + "; delete the file", backup=False)
        )
        return
    after = doc.dumps(data)
    original = record.get("backup")
    if original:
        # Restore the original bytes when the result is that same JSON, in the same key order.
        try:
            backup = read_json_file(Path(original))
        except InstallError:
            backup = None
        if backup is not None and backup.exists and ordered_equal(backup.data, data):
            after = backup.text if backup.text is not None else after
    plan.changes.append(FileChange(path, doc.text, after, summary))


def _last_index(items: Any, wanted: Any) -> int | None:
    if not isinstance(items, list):
        return None
    for index in range(len(items) - 1, -1, -1):
        if ordered_equal(items[index], wanted):
            return index
    return None
