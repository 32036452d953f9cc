"""`hybrid-router doctor`: probe every configured backend, print what works, save the results;
and, from the decision log, how often each model's answers failed the proxy's checks.

The probe itself lives in `providers/probe/` (imported inside the command: the CLI registers
every command at start-up, and most commands never probe anything).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ..core.text import shown

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..config.schema import Provider, RouterConfig
    from ..providers.probe import BackendReport, ModelReport

DASH = "\u2014"


def _tier_roles(config: RouterConfig) -> dict[tuple[str, str], list[str]]:
    """(provider, model) -> the tiers using it: `fast` as primary, `fast (fallback)` otherwise."""
    roles: dict[tuple[str, str], list[str]] = {}
    for name, tier in config.tiers.items():
        roles.setdefault((tier.provider, tier.model), []).append(name)
    for name, tier in config.tiers.items():
        for fallback in tier.fallbacks:
            if fallback.provider and fallback.model:
                roles.setdefault((fallback.provider, fallback.model), []).append(
                    f"{name} (fallback)"
                )
    return roles


def _find(reports: list[BackendReport], provider: str, model: str) -> ModelReport | None:
    for report in reports:
        if report.provider == provider:
            return report.model(model)
    return None


def _usable(reports: list[BackendReport], config: RouterConfig, provider: str, model: str) -> bool:
    """A tier's primary is usable when it answered (or, for Anthropic without a key, when
    Claude Code's own login will be used and nothing says otherwise)."""
    entry = _find(reports, provider, model)
    if entry is None:
        return False
    if entry.status == "ok":
        return True
    return entry.status == "skipped" and config.providers[provider].kind == "anthropic"


def _status_text(report: BackendReport, entry: ModelReport) -> str:
    if entry.status == "ok":
        return "OK" if entry.present is not False else "missing"
    if entry.status == "skipped":
        return "not checked" if report.kind == "anthropic" else "skipped"
    return entry.status


def _tools_text(entry: ModelReport) -> str:
    if entry.tools is True:
        return "yes"
    if entry.tools is False:
        return "no"
    return DASH


def _backend_line(report: BackendReport) -> str:
    head = f"{report.provider} ({report.kind}) {report.base_url}"
    if report.skipped:
        return f"{head}: not checked, {report.skipped}"
    if report.reachable is False:
        return f"{head}: unreachable ({report.error})"
    parts = ["reachable"]
    if report.version:
        version = report.version
        parts.append(f"Ollama {version}" if report.kind == "ollama" else version)
    if report.kind == "ollama":
        # The proxy and the MCP delegate speak /api/chat, setting each request's window.
        parts.append("native /api/chat (the window is set per request)")
    if report.error:
        parts.append(f"error: {report.error}")
    return f"{head}: {', '.join(parts)}"


def _runtime_text(report: BackendReport, entry: ModelReport) -> str:
    if report.kind != "ollama":
        return DASH
    return str(entry.runtime_context) if entry.runtime_context else "unloaded"


def _table(
    report: BackendReport, roles: dict[tuple[str, str], list[str]], config: RouterConfig
) -> list[str]:
    """MODEL, STATUS, CONTEXT (the model's maximum), WINDOW (its tier's, what requests run
    with), RUNNING AT (Ollama: the window it is loaded with now), TOOLS, USED BY."""
    windows = {(t.provider, t.model): t.context_window for t in config.tiers.values()}
    rows = [("MODEL", "STATUS", "CONTEXT", "WINDOW", "RUNNING AT", "TOOLS", "USED BY")]
    for entry in report.models:
        window = windows.get((report.provider, entry.model))
        rows.append(
            (
                entry.model,
                _status_text(report, entry),
                str(entry.context_window) if entry.context_window else DASH,
                str(window) if window else DASH,
                _runtime_text(report, entry),
                _tools_text(entry),
                ", ".join(roles.get((report.provider, entry.model), [])),
            )
        )
    columns = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:columns])]
        lines.append(("  " + "  ".join(cells) + "  " + row[columns]).rstrip())
    for entry in report.models:
        if entry.detail:
            lines.append(f"    {entry.model}: {entry.detail}")
    return lines


def _hints(reports: list[BackendReport], config: RouterConfig) -> list[str]:
    hints: list[str] = []
    for report in reports:
        provider: Provider = config.providers[report.provider]
        env = provider.base_url_env
        if report.skipped:
            if report.kind == "openrouter":
                hints.append(f"{report.skipped}: OpenRouter fallbacks are skipped")
            elif report.kind == "anthropic":
                hints.append(
                    f"{report.skipped}: Anthropic was not checked "
                    "(requests use Claude Code's own login)"
                )
            continue
        if report.reachable is False:
            if report.kind == "ollama":
                where = f" or set {env}" if env else ""
                hints.append(
                    f"{report.provider} not reachable at {report.base_url}: "
                    f"start `ollama serve`{where}"
                )
            elif report.kind == "openai":
                where = f" or set {env}" if env else ""
                hints.append(
                    f"{report.provider} not reachable at {report.base_url}: start the "
                    f"server (llama-server, vLLM, LM Studio){where}"
                )
            else:
                hints.append(
                    f"{report.provider} not reachable at {report.base_url}: "
                    "check the network" + (f" or {env}" if env else "")
                )
            continue
        if report.error:
            hints.append(f"{report.provider}: {report.error}")
        for entry in report.models:
            hints.extend(_model_hints(report, entry, config))
    return hints


def _model_hints(report: BackendReport, entry: ModelReport, config: RouterConfig) -> list[str]:
    hints: list[str] = []
    if entry.status == "missing":
        if report.kind == "ollama":
            tiers = _tier_roles(config).get((report.provider, entry.model), [])
            used = f" (used by {', '.join(tiers)})" if tiers else ""
            hints.append(
                f"model {entry.model} not installed: `hybrid-router` MCP pull_model "
                f"or `ollama pull {entry.model}`{used}; `hybrid-router setup --pull` pulls "
                "every missing tier model"
            )
        elif report.kind == "openrouter":
            hints.append(
                f"model {entry.model} not offered by OpenRouter: free variants come "
                "and go, pick a current one at https://openrouter.ai/models?max_price=0"
            )
        else:
            hints.append(
                f"model {entry.model} not served by {report.provider}: load it in the "
                "server or fix the model name in the config"
            )
        return hints
    if entry.status != "ok":
        return hints
    if entry.tools is False:
        hints.append(
            f"model {entry.model} did not call a tool when asked to: Claude Code's "
            "tool-using turns need a model with working tool calls"
        )
    if entry.context_window:
        for name, tier in config.tiers.items():
            if (
                tier.provider == report.provider
                and tier.model == entry.model
                and tier.context_window > entry.context_window
            ):
                hints.append(
                    f"tier {name} says contextWindow {tier.context_window} but "
                    f"{report.provider} reports {entry.context_window} for "
                    f"{entry.model}: lower it in the config or give the server a "
                    "larger context"
                )
    return hints


def render_report(reports: list[BackendReport], config: RouterConfig) -> tuple[str, bool]:
    """The readable report and whether every tier's primary model is usable."""
    roles = _tier_roles(config)
    lines: list[str] = []
    for report in reports:
        lines.append(_backend_line(report))
        lines.extend(_table(report, roles, config))
        lines.append("")
    usable = {
        name: _usable(reports, config, tier.provider, tier.model)
        for name, tier in config.tiers.items()
    }
    bad = [name for name, ok in usable.items() if not ok]
    if bad:
        lines.append(
            f"{len(usable) - len(bad)} of {len(usable)} tiers usable; not usable: {', '.join(bad)}"
        )
    else:
        lines.append(f"All {len(usable)} tiers usable.")
    hints = _hints(reports, config)
    if hints:
        lines.append("")
        lines.append("Hints:")
        lines.extend(f"  - {hint}" for hint in hints)
    # Model names, versions and errors come from the servers: printed with escapes (core.text).
    return "\n".join(shown(line) for line in lines), not bad


def _json_output(reports: list[BackendReport], config: RouterConfig) -> dict[str, Any]:
    tiers = [
        {
            "tier": name,
            "provider": tier.provider,
            "model": tier.model,
            "usable": _usable(reports, config, tier.provider, tier.model),
        }
        for name, tier in config.tiers.items()
    ]
    return {
        "ok": all(t["usable"] for t in tiers),
        "tiers": tiers,
        "backends": [report.to_dict() for report in reports],
    }


def profile_report(
    config: RouterConfig, reports: list[BackendReport]
) -> tuple[list[str], dict[str, Any] | None]:
    """The config's model profile against this machine: whether its need fits the memory
    detection finds, and which of its tier models are missing. Warnings only: the exit code
    stays the tiers' business."""
    from ..config.loading import ConfigError
    from ..config.profiles import load_profiles
    from .hardware import choose, detect, fit_of

    if config.profile is None:
        return [
            "Profile: none recorded in the config (hand-made tiers). `hybrid-router profiles` "
            "lists the profiles; `hybrid-router init --profile NAME --force` applies one."
        ], None
    try:
        profiles = load_profiles()
    except ConfigError as exc:
        return [f"Profile: {config.profile}; the profiles cannot be read: {exc}"], None
    profile = profiles.get(config.profile)
    if profile is None:
        return [
            f"Profile: {config.profile} is not a known profile (known: {', '.join(profiles)})"
        ], {"name": config.profile, "known": False}
    hardware = detect()
    fit = fit_of(hardware, profile.required_gb)
    lines = [
        f"Profile: {profile.name}, needs {profile.required_gb:.1f} GB "
        f"(loaded at once: {' + '.join(profile.spec.memory.loaded_together)})"
    ]
    if fit.fits:
        lines.append(f"  fits this machine: {fit.description}")
    else:
        best = choose(hardware, profiles)
        advice = (
            f"`hybrid-router init --profile {best.profile.name} --force` switches to one that "
            "fits (a backup is kept)"
            if best.fits and best.profile.name != profile.name
            else "expect slow answers and fallbacks to the cloud"
        )
        lines.append(
            f"  warning: profile {profile.name} needs {profile.required_gb:.1f} GB but this "
            f"machine has {fit.description}: {advice}"
        )
    missing: list[dict[str, Any]] = []
    for name, tier in profile.local_tiers().items():
        if config.tiers.get(name) is None or config.tiers[name].model != tier.model:
            continue  # the user changed this tier: it is not the profile's any more
        entry = _find(reports, config.tiers[name].provider, tier.model)
        if entry is not None and entry.status == "missing":
            facts = profile.spec.models[tier.model]
            missing.append({"tier": name, "model": tier.model, "downloadGb": facts.download_gb})
            lines.append(
                f"  warning: tier {name}'s model {tier.model} is not installed "
                f"({facts.download_gb:g} GB download): `hybrid-router setup --pull` or "
                f"`ollama pull {tier.model}`"
            )
    data = {
        "name": profile.name,
        "known": True,
        "requiredGb": profile.required_gb,
        "fits": fit.fits,
        "memoryGb": None if fit.memory_gb is None else round(fit.memory_gb, 2),
        "memory": fit.description,
        "missing": missing,
    }
    return lines, data


CHECKED_DAYS = 30  # the log's recent past: a model changed since then is judged on its own
# A model that fails this share of its checked answers (over at least MIN_CHECKED of them) is
# named as not good enough for Claude Code's agent loop.
UNRELIABLE_RATE = 0.2
MIN_CHECKED = 10


def checked_answers_report(
    config: RouterConfig, now: float | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Each local tier model's (and any other checked model's) share of answers that failed the
    proxy's checks over the last CHECKED_DAYS days, read from the decision log."""
    import os
    import sqlite3
    import time

    from ..core import home
    from ..core.table import LOCAL_PROVIDER_KINDS
    from ..log.database import connect
    from ..log.stats import model_checks

    since = (time.time() if now is None else now) - CHECKED_DAYS * 86400
    heading = (
        f"Checked answers in proxy mode, last {CHECKED_DAYS} days (answers to requests with "
        "tools; a failed one was replaced by the next link's):"
    )
    data: dict[str, Any] = {"days": CHECKED_DAYS, "models": []}
    path = home.database_path()
    found = []
    if os.path.exists(path):
        try:
            conn = connect(path)
            try:
                found = model_checks(conn, since, source="proxy")
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            data["error"] = str(exc)
            return [heading, f"  the decision log {path} cannot be read: {exc}"], data
    by_model = {(entry.provider, entry.model): entry for entry in found}
    local = [
        (tier.provider, tier.model)
        for tier in config.tiers.values()
        if config.providers.get(tier.provider) is not None
        and config.providers[tier.provider].kind in LOCAL_PROVIDER_KINDS
    ]
    names = list(dict.fromkeys([*local, *by_model]))
    lines = [heading]
    warnings = []
    for provider, model in names:
        entry = by_model.get((provider, model))
        label = f"{provider}/{model}"
        if entry is None or not entry.checked:
            lines.append(f"  {label}: no checked answers logged")
            data["models"].append({"provider": provider, "model": model, "checked": 0})
            continue
        data["models"].append(entry.to_dict())
        rate = entry.failure_rate or 0.0
        checks = ", ".join(f"{check} {count}" for check, count in entry.to_dict()["checks"].items())
        lines.append(
            f"  {label}: {entry.failed} of {entry.checked} failed ({rate:.1%})"
            + (f": {checks}" if checks else "")
        )
        if (entry.checked or 0) >= MIN_CHECKED and rate >= UNRELIABLE_RATE:
            warnings.append(
                f"  warning: {label} failed {rate:.0%} of its checked answers: not reliable "
                "enough for Claude Code's agent loop (each failure costs another call); give its "
                "tier a larger model"
            )
    return lines + warnings, data


def probe_and_save(
    config: RouterConfig, environ: Mapping[str, str], no_tools: bool
) -> list[BackendReport]:
    """Probe every backend, keep earlier tool results when the tools were not probed, and save
    the results where the proxy reads them."""
    import anyio
    import httpx2 as httpx

    from ..providers import probe

    async def run() -> list[BackendReport]:
        async with httpx.AsyncClient(trust_env=False) as client:
            return await probe.probe_all(config, environ, client, tools=not no_tools)

    reports = anyio.run(run)
    path = probe.cache_path(environ)
    if no_tools:
        probe.carry_over_tools(reports, probe.load_reports(path, None))
    try:
        probe.save_reports(path, reports)
    except OSError as exc:
        click.echo(f"warning: cannot save the probe results to {path}: {exc}", err=True)
    return reports


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option(
    "--no-tools",
    is_flag=True,
    help="Skip the tool-call round trips (earlier results are kept in the cache).",
)
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, no_tools: bool) -> None:
    """Check every configured backend: reachable, models present, context window, tool calls.

    Also compares the config's model profile with this machine: a warning when its memory
    need does not fit, or a tier's model is not installed. And reports, from the decision log,
    how many of each local model's answers failed the proxy's checks (last 30 days). Exit 0
    when every tier's primary model is usable, 1 otherwise. The results are saved to
    <home>/state/probe.json for the proxy.
    """

    from ..config.loading import ConfigError, load_config
    from ..core import home

    state = ctx.obj
    try:
        loaded = state.loaded() if hasattr(state, "loaded") else load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    config = loaded.config
    reports = probe_and_save(config, home.load_environment(), no_tools)
    profile_text, profile_data = profile_report(config, reports)
    checked_text, checked_data = checked_answers_report(config)
    if as_json:
        data = _json_output(reports, config)
        data["profile"] = profile_data
        data["checked_answers"] = checked_data
        click.echo(json.dumps(data, indent=2))
        ctx.exit(0 if data["ok"] else 1)
    text, ok = render_report(reports, config)
    click.echo(text)
    click.echo("")
    click.echo("\n".join(profile_text))
    click.echo("")
    # Model names come from the log: printed with escapes (core.text).
    click.echo("\n".join(shown(line) for line in checked_text))
    ctx.exit(0 if ok else 1)


def register(cli: click.Group) -> None:
    cli.add_command(doctor)
