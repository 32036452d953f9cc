"""`hybrid-router config path|show|check` and `hybrid-router init`: where the routing config
lives, what is in effect, whether a file is valid, and writing one sized to the machine (a model
profile: cli/profiles.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import ConfigError, default_config_path, load_config
from ..core import home
from .state import State, pass_state


@click.group()
def config() -> None:
    """Where the routing config lives, what is in effect, and whether a file is valid."""


@config.command("path")
@pass_state
def config_path_cmd(state: State) -> None:
    """Print the path of the config file in use (or the one `init` would write)."""
    path = state.config_file or home.config_path()
    click.echo(str(path))
    if not path.exists():
        click.echo(
            "(not created yet: the embedded default is in use; run `hybrid-router init`)", err=True
        )


@config.command("show")
@pass_state
def config_show(state: State) -> None:
    """Print the config in effect as JSON, with each provider's effective URL and key status."""
    from pydantic import TypeAdapter

    from ..config import RouterConfig, provider_api_key, provider_base_url

    loaded = state.loaded()
    environment = home.load_environment()
    data = TypeAdapter(RouterConfig).dump_python(
        loaded.config, mode="json", by_alias=True, exclude_none=True
    )
    data.pop("schema", None)
    for name, provider in loaded.config.providers.items():
        entry = data["providers"][name]
        entry["effectiveBaseUrl"] = provider_base_url(provider, environment)
        if provider.api_key_env:
            present = provider_api_key(provider, environment) is not None
            entry["apiKey"] = "set" if present else "not set"
    source = str(loaded.source) if loaded.source else f"{default_config_path()} (embedded default)"
    click.echo(
        json.dumps({"source": source, "home": str(home.home_dir()), "config": data}, indent=2)
    )


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def config_check(state: State, file: Path | None) -> None:
    """Validate FILE (default: the config in use); exit 1 with the problem if it is invalid."""
    try:
        loaded = load_config(file or state.config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    cfg = loaded.config
    where = str(loaded.source) if loaded.source else "embedded default"
    click.echo(
        f"ok: {where}: {len(cfg.routes)} routes, {len(cfg.tiers)} tiers, "
        f"{len(cfg.providers)} providers"
    )


@click.command()
@click.option(
    "--profile",
    "profile_name",
    metavar="NAME",
    help="Write this model profile's config (`hybrid-router profiles` lists them).",
)
@click.option(
    "--memory-gb",
    type=click.FloatRange(min=0, min_open=True),
    metavar="N",
    help="Write the largest profile that fits N GB of memory.",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing config file (a backup is kept beside it)."
)
@click.option("--if-missing", is_flag=True, help="Do nothing (and succeed) when the file exists.")
@pass_state
def init(
    state: State,
    profile_name: str | None,
    memory_gb: float | None,
    force: bool,
    if_missing: bool,
) -> None:
    """Write a routing config sized to this machine (or to --profile / --memory-gb).

    Without a flag, the largest model profile this machine's memory holds: GPU memory when an
    NVIDIA or Apple GPU holds one, else RAM for CPU inference; one line says which and why.
    An existing config is kept unless --force, which backs it up first.
    """
    from .profiles import load_or_fail, pick_profile, write_profile_config

    if profile_name is not None and memory_gb is not None:
        raise click.UsageError("give --profile or --memory-gb, not both")
    target = state.config_file or home.config_path()
    if target.exists() and not force:
        if if_missing:
            click.echo(f"kept existing config: {target}")
            return
        raise click.ClickException(
            f"{target} already exists (use --force to replace it; a backup is kept)"
        )
    profiles = load_or_fail()
    picked = pick_profile(profiles, profile_name, memory_gb)
    click.echo(picked.line)
    for line in write_profile_config(target, picked.profile):
        click.echo(line)


def register(cli: click.Group) -> None:
    cli.add_command(config)
    cli.add_command(init)
