"""Reading the files a delegated task names, on the server side, within limits.

The point of reading them here is that their text never enters Claude's context; the limits keep
a local model's context window (and the user's disk) safe from a careless path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BINARY_SNIFF_BYTES = 8192
SHOWN_PATH_CHARS = 120  # a path quoted in an error is cut to this (a name can be kilobytes)


class FileProblem(ValueError):
    """A listed file cannot be used; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class FileText:
    path: str  # as shown to the model: relative to the working directory when inside it
    text: str
    size: int


def _human(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _shown(path: str) -> str:
    return path if len(path) <= SHOWN_PATH_CHARS else path[: SHOWN_PATH_CHARS - 3] + "..."


def _why(exc: OSError | ValueError) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _locate(raw: str, root: Path) -> tuple[Path, int | None]:
    """The path `raw` names (symlinks resolved: a link out of the tree is outside) and its size,
    None when nothing is there. Raises what the file system says about an unusable name."""
    candidate = Path(os.path.expanduser(raw))
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    try:
        return resolved, resolved.stat().st_size
    except FileNotFoundError:
        return resolved, None


def read_task_files(
    paths: list[str],
    working_directory: Path,
    *,
    max_file_bytes: int,
    max_total_bytes: int,
    allow_outside: bool,
) -> list[FileText]:
    """Read every path or raise FileProblem for the first one that cannot be used."""
    root = working_directory.resolve()
    files: list[FileText] = []
    total = 0
    for index, raw in enumerate(paths):
        label = f"files[{index}] {_shown(raw)!r}"
        if not raw.strip():
            raise FileProblem(f"{label}: empty path")
        try:
            resolved, size = _locate(raw, root)
        except RuntimeError:  # Python before 3.13 says a symlink loop so
            raise FileProblem(f"{label}: a symlink loop") from None
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte, no permission...
            raise FileProblem(f"{label}: cannot be read: {_why(exc)}") from None
        inside = resolved == root or root in resolved.parents
        if not inside and not allow_outside:
            raise FileProblem(
                f"{label}: outside the working directory {root} (set "
                "delegate.allowOutsideWorkingDirectory in router-config.json to allow it)"
            )
        if size is None:
            raise FileProblem(f"{label}: no such file (looked for {_shown(str(resolved))})")
        if resolved.is_dir():
            raise FileProblem(f"{label}: is a directory; list the files inside it instead")
        if not resolved.is_file():
            raise FileProblem(f"{label}: not a regular file")
        if size > max_file_bytes:
            raise FileProblem(
                f"{label}: {_human(size)} is over the {_human(max_file_bytes)} limit per file; "
                "pass a smaller file, or the relevant excerpt in `context`"
            )
        total += size
        if total > max_total_bytes:
            raise FileProblem(
                f"{label}: the files together pass the {_human(max_total_bytes)} limit; "
                "split the task or pass fewer files"
            )
        try:
            data = resolved.read_bytes()
        except OSError as exc:
            raise FileProblem(f"{label}: cannot read: {_why(exc)}") from None
        if b"\0" in data[:BINARY_SNIFF_BYTES]:
            raise FileProblem(f"{label}: a binary file; only text files can be delegated")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise FileProblem(
                f"{label}: not UTF-8 text; only text files can be delegated"
            ) from None
        shown = str(resolved.relative_to(root)) if inside else str(resolved)
        files.append(FileText(shown, text, size))
    return files
