"""What gets installed: the files in ``settings-templates/``, with the command word filled in."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.loading import templates_dir
from .targets import COMMAND_FILENAME, TOOL_WORD, InstallError, with_word


@dataclass(frozen=True)
class Templates:
    hooks: dict[str, list[dict[str, Any]]]
    mcp_servers: dict[str, dict[str, Any]]
    status_line: dict[str, Any]
    proxy_env: dict[str, str]
    command_text: str


def load_templates(directory: Path | None = None) -> Templates:
    base = directory or templates_dir()

    def read(name: str) -> Any:
        path = base / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InstallError(f"cannot read the template {path}: {exc}") from None

    try:
        command_text = (base / "commands" / COMMAND_FILENAME).read_text(encoding="utf-8")
    except OSError as exc:
        raise InstallError(f"cannot read the template: {exc}") from None
    return Templates(
        hooks=read("hooks.json")["hooks"],
        mcp_servers=read("mcp-servers.json")["mcpServers"],
        status_line=read("statusline.json")["statusLine"],
        proxy_env=read("proxy-env.json")["env"],
        command_text=command_text,
    )


def hooks_for(templates: Templates, word: str) -> dict[str, list[dict[str, Any]]]:
    out = copy.deepcopy(templates.hooks)
    for groups in out.values():
        for group in groups:
            for handler in group.get("hooks", []):
                if isinstance(handler.get("command"), str):
                    handler["command"] = with_word(handler["command"], word)
    return out


def command_text_for(templates: Templates, word: str) -> str:
    if word == TOOL_WORD:
        return templates.command_text
    # `!`hybrid-router ...`` lines and `Bash(hybrid-router ...)` permissions
    return re.sub(r"(?<=[`(])hybrid-router(?= )", lambda _m: word, templates.command_text)
