"""`hybrid-router setup`: thin over setup_flow.py (imported inside the command)."""

from __future__ import annotations

import click

from .state import State


@click.command()
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Answer every question with its default (pull the models, install).",
)
@click.option(
    "--pull/--no-pull",
    default=None,
    help="Pull the missing recommended Ollama models (default: ask).",
)
@click.option(
    "--install/--no-install",
    "install_",
    default=None,
    help="Install into Claude Code at the end (default: ask).",
)
@click.option(
    "--scope",
    type=click.Choice(["user", "project"]),
    default="user",
    show_default=True,
    help="Where `install` writes (see `hybrid-router install`).",
)
@click.option(
    "--profile",
    "profile_name",
    metavar="NAME",
    help="Use this model profile instead of the one this machine's memory holds.",
)
@click.option(
    "--memory-gb",
    type=click.FloatRange(min=0, min_open=True),
    metavar="N",
    help="Use the largest model profile that fits N GB.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing config with the chosen profile's (a backup is kept beside it).",
)
@click.option(
    "--doctor/--no-doctor",
    default=True,
    show_default=True,
    help="Check every backend at the end, as `hybrid-router doctor` does.",
)
@click.option("--no-tools", is_flag=True, help="Doctor without the tool-call round trips (faster).")
@click.pass_context
def setup(
    ctx: click.Context,
    yes: bool,
    pull: bool | None,
    install_: bool | None,
    scope: str,
    profile_name: str | None,
    memory_gb: float | None,
    force: bool,
    doctor: bool,
    no_tools: bool,
) -> None:
    """Set everything up: hardware and profile, config, .env, Ollama and the profile's models,
    API keys, doctor, install.

    Nothing is downloaded or installed without consent: questions on a terminal, or the
    flags. An existing config is only replaced with --force, or when you agree on a
    terminal (--yes does not replace it); a backup is kept. Exit 0 when ready, 3 when Ollama
    is not reachable (install instructions are printed), 4 when setup finished but something
    is not ready (a model missing, a pull failed, a tier doctor finds unusable), 1 on an
    error.
    """
    from .setup_flow import SetupOptions, run_setup

    config_file = ctx.ensure_object(State).config_file
    opts = SetupOptions(
        yes=yes,
        pull=pull,
        install=install_,
        scope=scope,
        profile=profile_name,
        memory_gb=memory_gb,
        force=force,
        doctor=doctor,
        no_tools=no_tools,
        config_file=config_file,
    )
    ctx.exit(run_setup(ctx, opts))


def register(cli: click.Group) -> None:
    cli.add_command(setup)
