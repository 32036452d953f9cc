"""`hybrid-router claude [ARGS...]`: Claude Code through the proxy, in one command.

It makes sure a hybrid-router proxy answers on the configured address (starting one in the
background when nothing listens there, and refusing when another server does), then runs
`claude ARGS...` pointed at it, with the hooks, status line and MCP server that `install` would
register passed on the command line (`--settings` and `--mcp-config` take JSON): the session
routes exactly as an installed one, and no settings file is touched. The credentials are the
ones the proxy's banner names (install/proxy_env.py). A proxy the launcher started stops after a
stretch without requests (30 minutes unless told otherwise), never during one; `--keep-proxy`
leaves it running. Launchers started side by side share one proxy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ..core import home
from ..core.access import TOKEN_ENV
from .state import State, pass_state

SERVICE_NAME = "hybrid-router proxy"  # what the proxy's health endpoint says it is
DEFAULT_IDLE_MINUTES = 30.0
START_TIMEOUT_SECONDS = 30.0
CLAUDE_INSTALL_HINT = "npm install -g @anthropic-ai/claude-code"


def proxy_at(url: str, token: str | None) -> str:
    """ "ours" when a hybrid-router proxy answers at `url`, "other" when something else does,
    "none" when nothing listens there."""
    import httpx2 as httpx

    headers = {"x-api-key": token} if token else {}
    try:
        response = httpx.get(f"{url}/", headers=headers, timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return "none"
    try:
        service = response.json().get("service")
    except (ValueError, AttributeError):
        service = None
    return "ours" if response.status_code == 200 and service == SERVICE_NAME else "other"


def start_proxy(
    url: str, token: str | None, config_file: Path | None, idle_minutes: float | None
) -> Path:
    """Start `hybrid-router proxy` in the background (its own session, so it outlives this
    process and the terminal's Ctrl-C); return its log file once it answers. Its process id
    goes beside the log (`proxy.pid`)."""
    log_path = home.home_dir() / "logs" / "proxy.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-c", "from hybrid_router.entry import main; main()"]
    if config_file is not None:
        args += ["--config", str(config_file)]
    args.append("proxy")
    if idle_minutes:
        args += ["--idle-exit", f"{idle_minutes:g}"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    (log_path.parent / "proxy.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proxy_at(url, token) == "ours":
            return log_path
        if process.poll() is not None:
            if proxy_at(url, token) == "ours":  # another launcher's proxy won the port
                return log_path
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise click.ClickException(f"the proxy did not start: {' / '.join(tail)}")
        time.sleep(0.1)
    process.terminate()
    raise click.ClickException(f"the proxy did not answer within {START_TIMEOUT_SECONDS:g} s")


def claude_arguments(env_block: Mapping[str, str], word_shell: str, word_exec: str) -> list[str]:
    """`--settings` (env, hooks, status line) and `--mcp-config` (the MCP server) as JSON."""
    from ..install.targets import with_word
    from ..install.templates import hooks_for, load_templates

    templates = load_templates()
    settings: dict[str, Any] = {
        "env": dict(env_block),
        "hooks": hooks_for(templates, word_shell),
        "statusLine": {
            **templates.status_line,
            "command": with_word(templates.status_line["command"], word_shell),
        },
    }
    servers = {
        name: {**server, "command": word_exec} for name, server in templates.mcp_servers.items()
    }
    return [
        "--settings",
        json.dumps(settings, separators=(",", ":")),
        "--mcp-config",
        json.dumps({"mcpServers": servers}, separators=(",", ":")),
    ]


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--keep-proxy", is_flag=True, help="Leave a proxy this starts running (no idle stop)."
)
@click.option(
    "--idle-exit",
    "idle_minutes",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_IDLE_MINUTES,
    show_default=True,
    help="Minutes without requests after which a proxy this starts stops.",
)
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
@pass_state
def claude(
    state: State, keep_proxy: bool, idle_minutes: float, claude_args: tuple[str, ...]
) -> None:
    """Run Claude Code (`claude ARGS...`) through the hybrid-router proxy, starting the proxy
    when it is not running. Options of this command go before Claude Code's own arguments."""
    from ..install.proxy_env import client_host, proxy_env_for
    from ..install.targets import command_word
    from ..install.templates import load_templates

    config = state.loaded().config
    environ = home.load_environment()
    token = environ.get(TOKEN_ENV) or None
    url = f"http://{client_host(config.proxy.host)}:{config.proxy.port}"
    binary = shutil.which("claude", path=os.environ.get("PATH"))
    if binary is None:
        raise click.ClickException(f"Claude Code is not installed (`{CLAUDE_INSTALL_HINT}`)")
    status = proxy_at(url, token)
    if status == "other":
        raise click.ClickException(
            f"{url} is served by something that is not a hybrid-router proxy: stop it, or set "
            "proxy.port in the config"
        )
    if status == "none":
        log = start_proxy(url, token, state.config_file, None if keep_proxy else idle_minutes)
        stops = "keeps running" if keep_proxy else f"stops after {idle_minutes:g} idle minutes"
        click.echo(f"hybrid-router: started the proxy on {url} ({stops}; log: {log})", err=True)
    env_block = proxy_env_for(load_templates().proxy_env, config, environ)
    word = command_word("user")
    arguments = claude_arguments(env_block, word.shell, word.exec)
    child_env = {**os.environ, **env_block}
    sys.stdout.flush()
    sys.stderr.flush()
    # Claude Code takes over this process: its exit code, its signals, its terminal.
    os.execvpe(binary, [binary, *arguments, *claude_args], child_env)


def register(cli: click.Group) -> None:
    cli.add_command(claude)
