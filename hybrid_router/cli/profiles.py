"""`hybrid-router profiles`: the model profiles (settings-templates/profiles/), what each needs
and runs; and the one place `init` and `setup` choose a profile and write its config (a backup of
the replaced file first)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config.loading import ConfigError
from ..config.profiles import (
    Profile,
    format_json,
    get_profile,
    load_profiles,
    profile_for_memory,
    render_config,
)
from .state import State, pass_state

if TYPE_CHECKING:
    from .hardware import Hardware


def load_or_fail() -> dict[str, Profile]:
    try:
        return load_profiles()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@dataclass(frozen=True)
class Picked:
    profile: Profile
    line: str  # how it was chosen: the detection line, or the flag
    fits: bool = True


def pick_profile(
    profiles: Mapping[str, Profile],
    name: str | None,
    memory_gb: float | None,
    hardware: Hardware | None = None,
) -> Picked:
    """`--profile NAME`, `--memory-gb N` (the largest that fits), or this machine's memory
    (`hardware`, detected when not given)."""
    if name is not None and memory_gb is not None:
        raise click.UsageError("give --profile or --memory-gb, not both")
    try:
        if name is not None:
            profile = get_profile(name, profiles)
            return Picked(profile, f"profile {profile.name}: chosen with --profile")
        if memory_gb is not None:
            profile = profile_for_memory(profiles, memory_gb)
            return Picked(
                profile,
                f"profile {profile.name}: the largest that fits {memory_gb:g} GB "
                f"(needs {profile.required_gb:.1f} GB)",
            )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from .hardware import choose, detect

    choice = choose(hardware or detect(), profiles)
    return Picked(choice.profile, choice.line, choice.fits)


def write_profile_config(target: Path, profile: Profile) -> list[str]:
    """Write the profile's full config to `target`; an existing file is copied to a backup
    beside it first (as `install` backs up user files). Returns what was done, a line each."""
    from ..install.files import atomic_write, backup_path

    text = format_json(render_config(profile))
    done: list[str] = []
    if target.exists():
        backup = backup_path(target)
        shutil.copy2(target, backup)
        done.append(f"backed up {target} to {backup}")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text)
    done.append(f"wrote {target} (profile {profile.name}, needs {profile.required_gb:.1f} GB)")
    return done


def _windows(profile: Profile) -> list[str]:
    """Tiers grouped by the model and window they share."""
    groups: dict[tuple[str, str, int], list[str]] = {}
    for name, tier in profile.spec.tiers.items():
        groups.setdefault((tier.provider, tier.model, tier.context_window), []).append(name)
    return [
        f"{', '.join(names)}: {provider} {model}, window {window:,}"
        for (provider, model, window), names in groups.items()
    ]


def profile_lines(profile: Profile, marks: list[str]) -> list[str]:
    spec = profile.spec
    size = f"for {spec.memory_gb} GB" if spec.memory_gb else "by name only"
    mark = f"  ({'; '.join(marks)})" if marks else ""
    lines = [
        f"{profile.name}: {size}, needs {profile.required_gb:.1f} GB "
        f"(loaded at once: {' + '.join(spec.memory.loaded_together)}){mark}"
    ]
    lines += [f"  {line}" for line in _windows(profile)]
    for model, facts in spec.models.items():
        abilities = ["tools" if facts.tools else "no tools"]
        if facts.thinking:
            abilities.append("thinking")
        lines.append(
            f"  {model}: {facts.download_gb:g} GB download, {', '.join(abilities)}, up to "
            f"{facts.max_context_tokens:,} tokens; {facts.memory_gb:.2f} GB at {facts.window:,}"
        )
    lines.append(f"  {spec.description}")
    return lines


def profile_data(profile: Profile) -> dict[str, Any]:
    from pydantic import TypeAdapter

    from ..config.profiles import ModelFacts

    spec = profile.spec
    facts = TypeAdapter(dict[str, ModelFacts]).dump_python(spec.models, mode="json", by_alias=True)
    return {
        "name": profile.name,
        "description": spec.description,
        "memoryGb": spec.memory_gb,
        "requiredGb": spec.memory.required_gb,
        "autoSelect": spec.auto_select,
        "loadedTogether": list(spec.memory.loaded_together),
        "largeContextTokens": (
            spec.large_context_route.conditions.min_context_tokens
            if spec.large_context_route
            else None
        ),
        "tiers": {
            name: {
                "provider": tier.provider,
                "model": tier.model,
                "contextWindow": tier.context_window,
            }
            for name, tier in spec.tiers.items()
        },
        "models": facts,
        "file": str(profile.path),
    }


@click.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON.")
@pass_state
def profiles_cmd(state: State, as_json: bool) -> None:
    """List the model profiles: the memory each needs, its models and windows.

    `hybrid-router init --profile NAME` writes one as your config; plain `init` picks the
    largest this machine holds.
    """
    from .hardware import choose, detect

    profiles = load_or_fail()
    try:
        current = state.loaded().config.profile
    except click.ClickException:
        current = None  # a broken config does not hide the profiles
    choice = choose(detect(), profiles)
    if as_json:
        data = {
            "profiles": [profile_data(p) for p in profiles.values()],
            "configProfile": current,
            "detected": {
                "profile": choice.profile.name,
                "memoryGb": round(choice.memory_gb, 2),
                "memoryKind": choice.memory_kind,
                "fits": choice.fits,
                "line": choice.line,
            },
        }
        click.echo(json.dumps(data, indent=2))
        return
    for profile in profiles.values():
        marks = []
        if profile.name == current:
            marks.append("your config")
        if profile.name == choice.profile.name:
            marks.append("this machine")
        click.echo("\n".join(profile_lines(profile, marks)))
        click.echo("")
    click.echo(choice.line)


def register(cli: click.Group) -> None:
    cli.add_command(profiles_cmd)
