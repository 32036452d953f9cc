"""JSON documents read with their own style (indentation, final newline) so they are written back
in it, and the comparisons that respect key order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .targets import InstallError


@dataclass
class JsonFile:
    path: Path
    text: str | None  # None: the file does not exist
    data: dict[str, Any]
    indent: int | str | None = 2
    trailing_newline: bool = True

    @property
    def exists(self) -> bool:
        return self.text is not None

    def dumps(self, data: Mapping[str, Any]) -> str:
        text = json.dumps(data, indent=self.indent, ensure_ascii=False)
        return text + "\n" if self.trailing_newline else text


def _detect_indent(text: str) -> int | str | None:
    match = re.search(r"\n([ \t]+)\S", text)
    if not match:
        return None if text.strip() not in ("", "{}") else 2
    indent = match.group(1)
    return len(indent) if set(indent) == {" "} else indent


def read_json_file(path: Path) -> JsonFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return JsonFile(path, None, {})
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot read {path}: {exc}") from None
    if not text.strip():
        return JsonFile(path, text, {})
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstallError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            " (fix it, then run again; nothing was changed)"
        ) from None
    if not isinstance(data, dict):
        raise InstallError(f"{path} does not hold a JSON object (nothing was changed)")
    return JsonFile(path, text, data, _detect_indent(text), text.endswith("\n"))


def ordered_equal(a: Any, b: Any) -> bool:
    """Equal as JSON and in key order."""
    return json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)


def expect_dict(doc: JsonFile, key: str) -> dict[str, Any] | None:
    value = doc.data.get(key)
    if value is not None and not isinstance(value, dict):
        raise InstallError(f"{doc.path}: `{key}` is not a JSON object (nothing was changed)")
    return value
