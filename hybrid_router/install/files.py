"""Touching the disk: diffs for the dry run, missing directories, backups, atomic writes."""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

BACKUP_INFIX = ".hybrid-router-backup-"


def unified_diff(path: Path, before: str | None, after: str | None) -> str:
    def lines(text: str | None) -> list[str]:
        if not text:
            return []
        out = text.splitlines(keepends=True)
        if not out[-1].endswith("\n"):
            out[-1] += "\n\\ No newline at end of file\n"
        return out

    def label(prefix: str, text: str | None) -> str:
        if text is None:
            return "/dev/null"
        return f"{prefix}{path}" if path.is_absolute() else f"{prefix}/{path}"

    return "".join(
        difflib.unified_diff(
            lines(before), lines(after), fromfile=label("a", before), tofile=label("b", after)
        )
    )


def missing_dirs(path: Path) -> list[Path]:
    """The directories above `path` that do not exist yet, outermost first."""
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        if parent.parent == parent:
            break
        parent = parent.parent
    return list(reversed(missing))


def backup_path(path: Path, now: datetime | None = None, directory: Path | None = None) -> Path:
    """Where the backup of `path` goes: next to it, or (project scope) in the tool's home.

    Project files are committed with the repository: their backups must not land beside them.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    if directory is None:
        directory, name = path.parent, path.name
    else:
        directory.mkdir(parents=True, exist_ok=True)
        name = str(path.resolve()).strip(os.sep).replace(os.sep, "__")
    candidate = directory / f"{name}{BACKUP_INFIX}{stamp}"
    counter = 2
    while candidate.exists():
        candidate = directory / f"{name}{BACKUP_INFIX}{stamp}-{counter}"
        counter += 1
    return candidate


def atomic_write(path: Path, text: str, mode: int | None = None) -> None:
    """Write through a temporary file in the same directory and `os.replace` it into place."""
    keep_mode: int | None
    try:
        keep_mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        keep_mode = mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_mode is not None:
            os.chmod(tmp, keep_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
