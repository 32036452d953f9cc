"""`hybrid-router install` and `hybrid-router uninstall`: thin over `install` (plan, print, apply).

The `install` package is imported inside the commands: the CLI registers every command at
start-up, and only these two need it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core import home
from .state import State, pass_state

if TYPE_CHECKING:
    from .. import install as inst

_SCOPE = click.option(
    "--scope",
    type=click.Choice(["user", "project"]),
    default="user",
    show_default=True,
    help="user: your Claude Code settings (all projects); project: files in --project-dir, "
    "shared with the repository.",
)
_DRY_RUN = click.option(
    "--dry-run", is_flag=True, help="Show what would change (as diffs) and write nothing."
)
_PROJECT_DIR = click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The project for --scope project (default: the current directory).",
)


def _show(path: Path) -> str:
    home = Path(os.path.expanduser("~"))
    try:
        return "~/" + str(path.relative_to(home)) if home != Path("/") else str(path)
    except ValueError:
        return str(path)


def _print_plan(plan: inst.Plan, dry_run: bool) -> None:
    for change in plan.changes:
        click.echo(f"  {_show(change.path)}: {change.summary}")
    for note in plan.notes:
        click.echo(note, err=note.startswith("warning:"))
    for change in plan.changes:
        click.echo("")
        click.echo(change.diff().rstrip("\n"))
    if plan.changes:
        click.echo("")
    if dry_run and plan.changes:
        click.echo("Dry run: nothing was written.")


def _run(action: str, plan: inst.Plan, dry_run: bool) -> None:
    from .. import install as inst

    if not dry_run:
        try:
            inst.apply(plan)
        except OSError as exc:
            raise click.ClickException(f"{action} stopped: {exc}") from None
        for backup in plan.backups:
            click.echo(f"backup: {_show(backup)}")


@click.command()
@_SCOPE
@click.option(
    "--proxy",
    is_flag=True,
    help="Also set env ANTHROPIC_BASE_URL (and its token) so Claude Code talks to the "
    "hybrid-router proxy.",
)
@click.option(
    "--statusline/--no-statusline",
    default=True,
    show_default=True,
    help="Add the hybrid-router status line (never replaces one you have).",
)
@_DRY_RUN
@_PROJECT_DIR
@pass_state
def install(
    state: State,
    scope: Any,
    proxy: bool,
    statusline: bool,
    dry_run: bool,
    project_dir: Path | None,
) -> None:
    """Add the hooks, the MCP server, the status line and /route-stats to Claude Code.

    Merges into your settings (nothing of yours is replaced), backs up each file it changes,
    prints the diffs, and records what it added so `hybrid-router uninstall` can take out
    exactly that.
    """
    from .. import install as inst
    from ..install.proxy_env import proxy_env_for

    if scope == "project" and project_dir is not None and not project_dir.is_dir():
        raise click.ClickException(f"no such project directory: {project_dir}")
    try:
        env_block = None
        if proxy:  # the address and credentials of the proxy as configured, as its banner says
            env_block = proxy_env_for(
                inst.load_templates().proxy_env, state.loaded().config, home.load_environment()
            )
        plan = inst.plan_install(
            scope, project_dir=project_dir, proxy=proxy, proxy_env=env_block, statusline=statusline
        )
    except inst.InstallError as exc:
        raise click.ClickException(str(exc)) from None
    where = (
        f"{scope} scope"
        if plan.targets.project_dir is None
        else (f"project scope, {plan.targets.project_dir}")
    )
    assert plan.word is not None
    click.echo(f"hybrid-router install ({where}; command: {plan.word.shell})")
    _print_plan(plan, dry_run)
    _run("install", plan, dry_run)
    if not plan.changes:
        click.echo("Nothing to change: hybrid-router is already installed there.")
    elif not dry_run:
        click.echo(
            f"Installed. Record: {_show(inst.manifest_path())}. "
            "Start a new Claude Code session to load it."
        )


@click.command()
@_SCOPE
@_DRY_RUN
@_PROJECT_DIR
def uninstall(scope: Any, dry_run: bool, project_dir: Path | None) -> None:
    """Take out exactly what `hybrid-router install` added (nothing you had)."""
    from .. import install as inst

    try:
        plan = inst.plan_uninstall(scope, project_dir=project_dir)
    except inst.InstallError as exc:
        raise click.ClickException(str(exc)) from None
    if plan is None:
        target = inst.targets_for(scope, project_dir)
        what = "user scope" if target.project_dir is None else f"project {target.project_dir}"
        click.echo(
            f"hybrid-router is not installed for {what} (no record in "
            f"{_show(inst.manifest_path())}); nothing to do."
        )
        return
    where = (
        f"{scope} scope"
        if plan.targets.project_dir is None
        else (f"project scope, {plan.targets.project_dir}")
    )
    click.echo(f"hybrid-router uninstall ({where})")
    _print_plan(plan, dry_run)
    _run("uninstall", plan, dry_run)
    if dry_run:
        return
    if plan.changes:
        click.echo("Uninstalled.")
    else:
        click.echo("Nothing left to remove; the install record is cleared.")


def register(cli: click.Group) -> None:
    cli.add_command(install)
    cli.add_command(uninstall)
