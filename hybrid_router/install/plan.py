"""A `Plan` of file changes (computed without writing) and `apply`, which writes it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..core import home
from .files import atomic_write, backup_path, unified_diff
from .json_files import ordered_equal
from .manifest import read_manifest, update_manifest
from .targets import CommandWord, Targets

# --- plans ---------------------------------------------------------------------------------------


@dataclass
class FileChange:
    path: Path
    before: str | None  # None: the file does not exist yet
    after: str | None  # None: the file is deleted
    summary: str
    mode: int | None = None  # permissions for a new file
    backup: bool = True  # back the old file up first (when it exists)

    @property
    def created(self) -> bool:
        return self.before is None and self.after is not None

    @property
    def deleted(self) -> bool:
        return self.after is None

    def diff(self) -> str:
        return unified_diff(self.path, self.before, self.after)


@dataclass
class Plan:
    action: Literal["install", "uninstall"]
    targets: Targets
    word: CommandWord | None
    changes: list[FileChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # the scope's manifest entry after `apply` (None: remove the scope's entry)
    manifest_entry: dict[str, Any] | None = None
    dirs_to_create: list[Path] = field(default_factory=list)
    dirs_to_remove: list[Path] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)  # filled in by `apply`


# --- applying a plan -----------------------------------------------------------------------------


def apply(plan: Plan, environ: Mapping[str, str] | None = None) -> Plan:
    """Write the plan: backups first, then each file atomically, then the manifest."""
    env = os.environ if environ is None else environ
    now = datetime.now()
    for directory in plan.dirs_to_create:
        directory.mkdir(parents=True, exist_ok=True)
    entry = plan.manifest_entry
    backups_dir = home.home_dir(env) / "backups" if plan.targets.scope == "project" else None
    for change in plan.changes:
        if change.before is not None and change.backup:
            target = backup_path(change.path, now, backups_dir)
            shutil.copy2(change.path, target)
            plan.backups.append(target)
            if entry is not None:
                record = entry["files"].get(str(change.path))
                if record is not None and not record.get("backup") and not record.get("created"):
                    record["backup"] = str(target)
        if change.after is None:
            change.path.unlink(missing_ok=True)
        else:
            atomic_write(change.path, change.after, change.mode)
    for directory in plan.dirs_to_remove:
        try:
            directory.rmdir()  # only when empty
        except OSError:
            pass
    recorded = read_manifest(env)["scopes"].get(plan.targets.key)
    if entry is not None and not plan.changes:
        if recorded is None and not entry["files"]:
            return plan  # nothing added, nothing recorded before: no manifest entry
        if recorded is not None and ordered_equal(
            {**recorded, "version": None}, {**entry, "version": None}
        ):
            return plan  # a second install: the record stays as it is
    if entry is None and recorded is None:
        return plan
    update_manifest(plan.targets.key, entry, env)
    return plan
