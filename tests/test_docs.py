"""Words that match the code: every file the README or a module's text names is in the
repository (a renamed module leaves no stale reference behind), and no text points at documents
that only exist outside it."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A file name as prose writes it: `routing.py`, `core/routing.py`, `hybrid_router/log/rows.py`.
# (Only source and prose files: the .json files a docstring names are the tool's own, in the home.)
FILE_NAME = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.(?:py|md))\b")
OUTSIDE = ("PROTOCOLS.md", "OBSERVED.md", "DESIGN.md", "local-llm.md", "§")


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [name for name in listed if (ROOT / name).exists()]


def prose(source: str) -> str:
    """A module's docstrings and comments: what it says about itself (not its string data, such
    as sample prompts that name made-up files)."""
    parts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                parts.append(docstring)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            parts.append(token.string)
    return "\n".join(parts)


def texts() -> dict[str, str]:
    found = {"README.md": (ROOT / "README.md").read_text()}
    for path in sorted((ROOT / "hybrid_router").rglob("*.py")):
        found[str(path.relative_to(ROOT))] = prose(path.read_text())
    return found


def names_file(name: str, files: list[str], where: str) -> bool:
    if "/" not in name:
        return any(Path(f).name == name for f in files)
    # a path: from the repository, from the package, or from the naming file's own folder
    here = str(Path(where).parent)
    return any(f == name or f.endswith("/" + name) or f == f"{here}/{name}" for f in files)


def test_every_file_named_in_the_readme_and_the_code_exists():
    files = tracked_files()
    missing = []
    for where, text in texts().items():
        for match in FILE_NAME.finditer(text):
            name = match.group(1)
            if name.startswith(("http", "www.")) or name in ("settings.json", ".claude.json"):
                continue  # Claude Code's own files live in the user's home, not here
            if not names_file(name, files, where):
                missing.append(f"{where}: {name}")
    assert not missing, "names of files that are not in the repository:\n" + "\n".join(missing)


def test_no_text_points_at_documents_outside_the_repository():
    cited = [
        f"{where}: {word}" for where, text in texts().items() for word in OUTSIDE if word in text
    ]
    assert not cited, cited
