"""What the commands share: the config in effect (loaded once, on first use), the decision log,
and the period option (`--since`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click

from ..config import ConfigError, LoadedConfig, load_config
from ..core import home
from ..log.database import connect
from ..log.stats import PeriodError, parse_since

SINCE_HELP = "Period: 30m, 24h, 7d, 2w, today, all, or an ISO date."


class State:
    """What every command receives (`ctx.obj`): the `--config` choice and its loaded config."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._loaded: LoadedConfig | None = None

    def loaded(self) -> LoadedConfig:
        if self._loaded is None:
            try:
                self._loaded = load_config(self.config_file)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._loaded


pass_state = click.make_pass_decorator(State, ensure=True)


def open_log() -> sqlite3.Connection:
    path = home.database_path()
    try:
        return connect(path)
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"cannot open the decision log {path}: {exc}") from None


def parse_period(value: str) -> float | None:
    """A `--since` value as a Unix time (None: all time), or a usage error naming the option."""
    try:
        return parse_since(value)
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
