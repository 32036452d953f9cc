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

The functions here compute a `Plan` (reading files, never writing) and `apply` it; the click
commands in `cli_install` print the plan's summary and diffs.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from . import __version__, home
from .config import templates_dir

Scope = Literal["user", "project"]

TOOL_WORD = "hybrid-router"  # every template command starts with this bare word
SERVER_NAME = "hybrid-router"
COMMAND_FILENAME = "route-stats.md"
MANIFEST_FILENAME = "installed.json"
MANIFEST_VERSION = 1
BACKUP_INFIX = ".hybrid-router-backup-"


class InstallError(Exception):
    """A user-facing problem (bad JSON in a settings file, unexpected shape): one line."""


# --- where things go -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    scope: Scope
    key: str  # the manifest key: "user" or "project:<absolute dir>"
    settings: Path
    mcp: Path
    command: Path
    project_dir: Path | None = None
    # other settings files whose statusLine would be overridden by ours (project scope)
    statusline_elsewhere: tuple[Path, ...] = ()


def claude_config_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    return Path(configured).expanduser() if configured else None


def _user_home(environ: Mapping[str, str]) -> Path:
    configured = environ.get("HOME", "").strip()
    return Path(configured) if configured else Path.home()


def user_settings_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    config_dir = claude_config_dir(env)
    return (config_dir or _user_home(env) / ".claude") / "settings.json"


def targets_for(
    scope: Scope, project_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Targets:
    env = os.environ if environ is None else environ
    if scope == "user":
        config_dir = claude_config_dir(env)
        base = config_dir or _user_home(env) / ".claude"
        claude_json = (config_dir or _user_home(env)) / ".claude.json"
        return Targets(
            scope="user",
            key="user",
            settings=base / "settings.json",
            mcp=claude_json,
            command=base / "commands" / COMMAND_FILENAME,
        )
    root = Path(project_dir if project_dir is not None else Path.cwd()).resolve()
    return Targets(
        scope="project",
        key=f"project:{root}",
        settings=root / ".claude" / "settings.json",
        mcp=root / ".mcp.json",
        command=root / ".claude" / "commands" / COMMAND_FILENAME,
        project_dir=root,
        statusline_elsewhere=(root / ".claude" / "settings.local.json", user_settings_path(env)),
    )


# --- the command word ----------------------------------------------------------------------------


def own_console_script() -> Path:
    """The `hybrid-router` script of this installation: next to the interpreter running us."""
    name = "hybrid-router.exe" if os.name == "nt" else "hybrid-router"
    return Path(sys.executable).parent / name  # not resolved: a venv's python is a symlink


def _same_file(a: str | Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@dataclass(frozen=True)
class CommandWord:
    shell: str  # for shell commands (hooks, statusLine, the slash command): quoted if needed
    exec: str  # for the MCP server's `command` (no shell)
    notes: tuple[str, ...] = ()


def command_word(scope: Scope, environ: Mapping[str, str] | None = None) -> CommandWord:
    """The bare name when `hybrid-router` on PATH is this installation, else the script's path.

    Project files are shared, so project scope always uses the bare name (and warns when it is
    not on PATH).
    """
    env = os.environ if environ is None else environ
    found = shutil.which(TOOL_WORD, path=env.get("PATH", os.defpath))
    script = own_console_script()
    same = found is not None and script.exists() and _same_file(found, script)
    if scope == "project":
        if found is None:
            note = (
                f"warning: `{TOOL_WORD}` is not on PATH; the project's hooks, MCP server and "
                f"/route-stats call it by name (install it with pipx or pip, or add "
                f"{script.parent} to PATH)"
            )
            return CommandWord(TOOL_WORD, TOOL_WORD, (note,))
        if not same and script.exists():
            note = (
                f"warning: `{TOOL_WORD}` on PATH is {found}, not this installation ({script}); "
                "the project files call whichever is first on PATH"
            )
            return CommandWord(TOOL_WORD, TOOL_WORD, (note,))
        return CommandWord(TOOL_WORD, TOOL_WORD)
    if same or (found is not None and not script.exists()):
        return CommandWord(TOOL_WORD, TOOL_WORD)
    if script.exists():
        reason = "is not on PATH" if found is None else f"on PATH is another installation ({found})"
        return CommandWord(
            shlex.quote(str(script)),
            str(script),
            (f"note: `{TOOL_WORD}` {reason}: the settings call {script}",),
        )
    return CommandWord(
        TOOL_WORD,
        TOOL_WORD,
        (f"warning: `{TOOL_WORD}` is not on PATH; the hooks will fail until it is",),
    )


def _with_word(command: str, word: str) -> str:
    if command == TOOL_WORD or command.startswith(TOOL_WORD + " "):
        return word + command[len(TOOL_WORD) :]
    return command


def _normal_command(command: Any) -> Any:
    """A command with its program word reduced to `hybrid-router` when it is ours (any path)."""
    if not isinstance(command, str):
        return command
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if words and Path(words[0]).name in (TOOL_WORD, TOOL_WORD + ".exe"):
        words[0] = TOOL_WORD
    return words


# --- the templates -------------------------------------------------------------------------------


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


def _hooks_for(templates: Templates, word: str) -> dict[str, list[dict[str, Any]]]:
    out = copy.deepcopy(templates.hooks)
    for groups in out.values():
        for group in groups:
            for handler in group.get("hooks", []):
                if isinstance(handler.get("command"), str):
                    handler["command"] = _with_word(handler["command"], word)
    return out


def _command_text_for(templates: Templates, word: str) -> str:
    if word == TOOL_WORD:
        return templates.command_text
    # `!`hybrid-router ...`` lines and `Bash(hybrid-router ...)` permissions
    return re.sub(r"(?<=[`(])hybrid-router(?= )", lambda _m: word, templates.command_text)


# --- JSON files in their own style ---------------------------------------------------------------


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


def _ordered_equal(a: Any, b: Any) -> bool:
    """Equal as JSON and in key order."""
    return json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)


def _expect_dict(doc: JsonFile, key: str) -> dict[str, Any] | None:
    value = doc.data.get(key)
    if value is not None and not isinstance(value, dict):
        raise InstallError(f"{doc.path}: `{key}` is not a JSON object (nothing was changed)")
    return value


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


def _missing_dirs(path: Path) -> list[Path]:
    """The directories above `path` that do not exist yet, outermost first."""
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        if parent.parent == parent:
            break
        parent = parent.parent
    return list(reversed(missing))


def _matcher(group: Mapping[str, Any]) -> str:
    value = group.get("matcher")
    return "" if value in (None, "", "*") else str(value)


def _same_handler(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.get("type", "command") != b.get("type", "command"):
        return False
    if "command" in a or "command" in b:
        return _normal_command(a.get("command")) == _normal_command(b.get("command")) and (
            a.get("args") == b.get("args")
        )
    return _ordered_equal(a, b)


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
        and _normal_command(a.get("command")) == _normal_command(b.get("command"))
        and a.get("args", []) == b.get("args", [])
    )


def _is_ours(status_line: Any, wanted: Mapping[str, Any]) -> bool:
    return isinstance(status_line, dict) and _normal_command(
        status_line.get("command")
    ) == _normal_command(wanted["command"])


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

    hooks = _expect_dict(settings, "hooks")
    if hooks is None:
        hooks = data["hooks"] = {}
        _add_unique(created_keys, "hooks")
    else:
        hooks = data["hooks"]
    added_events: list[str] = []
    for event, groups in _hooks_for(tpl, word.shell).items():
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
        wanted = {**tpl.status_line, "command": _with_word(tpl.status_line["command"], word.shell)}
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
        env_block = _expect_dict(settings, "env")
        if env_block is None:
            env_block = data["env"] = {}
            _add_unique(created_keys, "env")
        else:
            env_block = data["env"]
        added_env = added.setdefault("env", {})
        new_keys = []
        for key, value in tpl.proxy_env.items():
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

    if not _ordered_equal(data, settings.data):
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
    servers = _expect_dict(mcp, "mcpServers")
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
    text = _command_text_for(tpl, word.shell)
    record = _file_record(previous, targets.command)
    try:
        existing = targets.command.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot read {targets.command}: {exc}") from None
    if existing is None:
        plan.changes.append(FileChange(targets.command, None, text, "create /route-stats"))
        files[str(targets.command)] = {"kind": "command", "created": True, "sha256": _sha(text)}
    elif existing != text:
        if record.get("sha256") == _sha(existing):  # ours, from an older install: update it
            plan.changes.append(FileChange(targets.command, existing, text, "update /route-stats"))
            files[str(targets.command)] = {**record, "sha256": _sha(text)}
        else:
            plan.notes.append(
                f"note: kept your {targets.command} (it differs from hybrid-router's)"
            )

    for change in plan.changes:
        for directory in _missing_dirs(change.path):
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


def _add_unique(items: list[Any], item: Any) -> None:
    if not any(_ordered_equal(item, existing) for existing in items):
        items.append(item)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- uninstall -----------------------------------------------------------------------------------


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
    if _sha(text) == record.get("sha256"):
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
            if index is None:
                continue
            del current[index]
            removed.append(f"hook {event}")
    if "statusLine" in added:
        if _ordered_equal(data.get("statusLine"), added["statusLine"]):
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
        if isinstance(servers, dict) and _ordered_equal(servers.get(name), server):
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

    if _ordered_equal(data, doc.data):
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
        if backup is not None and backup.exists and _ordered_equal(backup.data, data):
            after = backup.text if backup.text is not None else after
    plan.changes.append(FileChange(path, doc.text, after, summary))


def _last_index(items: Any, wanted: Any) -> int | None:
    if not isinstance(items, list):
        return None
    for index in range(len(items) - 1, -1, -1):
        if _ordered_equal(items[index], wanted):
            return index
    return None


# --- applying a plan -----------------------------------------------------------------------------


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
        if recorded is not None and _ordered_equal(
            {**recorded, "version": None}, {**entry, "version": None}
        ):
            return plan  # a second install: the record stays as it is
    if entry is None and recorded is None:
        return plan
    update_manifest(plan.targets.key, entry, env)
    return plan


# --- the manifest --------------------------------------------------------------------------------


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
