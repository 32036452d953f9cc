"""The install record ``<home>/installed.json``: what was added, per scope and per file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import home
from .files import atomic_write
from .targets import InstallError

MANIFEST_FILENAME = "installed.json"
MANIFEST_VERSION = 1


def manifest_path(environ: Mapping[str, str] | None = None) -> Path:
    return home.home_dir(environ) / MANIFEST_FILENAME


def read_manifest(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    path = manifest_path(environ)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": MANIFEST_VERSION, "scopes": {}}
    except (OSError, ValueError) as exc:
        raise InstallError(f"cannot read the install record {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("scopes"), dict):
        raise InstallError(f"the install record {path} is damaged (no `scopes` object)")
    return data


def update_manifest(
    key: str, entry: dict[str, Any] | None, environ: Mapping[str, str] | None = None
) -> None:
    path = manifest_path(environ)
    manifest = read_manifest(environ)
    if entry is None:
        manifest["scopes"].pop(key, None)
    else:
        manifest["scopes"][key] = entry
    if not manifest["scopes"]:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
