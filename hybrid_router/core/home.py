"""The one directory everything the tool writes lives in, and the secrets read from it.

Stdlib only: the Claude Code hooks import this on every event, so it must stay cheap.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

HOME_ENV_VAR = "HYBRID_ROUTER_HOME"
DEFAULT_HOME = "~/.hybrid-router"

CONFIG_FILENAME = "router-config.json"
DOTENV_FILENAME = ".env"
DATABASE_FILENAME = "decisions.db"


def home_path(environ: Mapping[str, str] | None = None) -> str:
    """The tool's home as a string: ``$HYBRID_ROUTER_HOME`` when set, else ``~/.hybrid-router``.

    Strings, not `pathlib`, for the hooks: importing pathlib costs them a few milliseconds.
    """
    env = os.environ if environ is None else environ
    configured = env.get(HOME_ENV_VAR, "").strip()
    return os.path.expanduser(configured or DEFAULT_HOME)


def home_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The tool's home (see `home_path`)."""
    from pathlib import Path

    return Path(home_path(environ))


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    return home_dir(environ) / CONFIG_FILENAME


def database_path(environ: Mapping[str, str] | None = None) -> Path:
    return home_dir(environ) / DATABASE_FILENAME


def dotenv_path(environ: Mapping[str, str] | None = None) -> Path:
    return home_dir(environ) / DOTENV_FILENAME


def templates_path() -> str:
    """`settings-templates/`: inside the installed wheel, or at the top of a source checkout."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # hybrid_router/
    packaged = os.path.join(package, "settings_templates")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(package), "settings-templates")


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse ``KEY=value`` lines: comments, blank lines, ``export`` and quotes are handled.

    Deliberately small (no interpolation): the file holds API keys and base URLs, nothing more.
    """
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def load_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment layered over ``<home>/.env``: a variable set in the shell wins."""
    env = dict(os.environ if environ is None else environ)
    path = os.path.join(home_path(env), DOTENV_FILENAME)
    try:
        with open(path, encoding="utf-8") as handle:
            file_values = parse_dotenv(handle.read())
    except (FileNotFoundError, NotADirectoryError, PermissionError, UnicodeDecodeError):
        file_values = {}
    return {**file_values, **env}
