"""`hybrid-router setup`: get from nothing to a working router, one checked step at a time.

Steps: the hardware and the model profile it holds; the config (that profile's, written like
`init`; an existing one is replaced only with --force or a yes on a terminal); the home's `.env`
template (only when absent, mode 600); Ollama (found with its version and models, or exact
install instructions: nothing is ever downloaded without consent); the recommended models (the
config's Ollama tiers, so the profile's), pulled with a progress bar only when the user agrees;
which API keys are present (never their values); `doctor`; and `install` into Claude Code when
the user agrees.

Heavy imports (httpx2, anyio, the probe) happen inside the functions: the CLI registers every
command at start-up.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core import home

if TYPE_CHECKING:
    from ..config.profiles import Profile
    from ..config.schema import Provider, RouterConfig
    from .profiles import Picked

# Exit codes of `hybrid-router setup` (1 and 2 are click's: an error line, a usage error).
EXIT_OK = 0
EXIT_OLLAMA_MISSING = 3
EXIT_NOT_READY = 4

INSTALL_LINUX = "curl -fsSL https://ollama.com/install.sh | sh"
INSTALL_MACOS = "brew install ollama"
DOWNLOAD_PAGE = "https://ollama.com/download"
ENV_TEMPLATE = ".env.example"
_FALLBACK_ENV_TEMPLATE = (
    "# claude-hybrid-router: keys and URL overrides. Variables set in your shell take "
    "precedence.\nOPENROUTER_API_KEY=\nANTHROPIC_API_KEY=\n# OLLAMA_HOST=127.0.0.1:11434\n"
)
KEY_HINTS = {
    "openrouter": "OpenRouter's free models are skipped as fallbacks without it",
    "anthropic": "without it, premium routes use the credentials Claude Code sends",
}


@dataclass
class SetupOptions:
    yes: bool = False
    pull: bool | None = None
    install: bool | None = None
    scope: str = "user"
    profile: str | None = None  # --profile NAME
    memory_gb: float | None = None  # --memory-gb N
    force: bool = False
    doctor: bool = True
    no_tools: bool = False
    config_file: Path | None = None


def interactive() -> bool:
    """Whether questions can be asked (a terminal on stdin); tests patch this."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def consent(flag: bool | None, yes: bool, question: str, flag_names: str) -> bool:
    """An explicit flag wins; then --yes (the default answer, yes); then a prompt when there is
    a terminal; otherwise no, with a note saying which flag to pass."""
    if flag is not None:
        return flag
    if yes:
        return True
    if interactive():
        return click.confirm(f"  {question}", default=True)
    click.echo(f"  skipped: not an interactive terminal (pass {flag_names})")
    return False


def heading(title: str) -> None:
    click.echo("")
    click.echo(f"== {title}")


def human_bytes(count: float) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


# --- config and .env -----------------------------------------------------------------------------


def config_step(target: Path, picked: Picked, opts: SetupOptions) -> list[str]:
    """Write the chosen profile's config when there is none. An existing config is kept when
    it already records that profile; else it is replaced (a backup first) only with --force
    or a yes on a terminal. `--yes` does not replace it: it is the user's file."""
    from ..config.loading import ConfigError, read_config_file
    from .profiles import write_profile_config

    profile = picked.profile
    if not target.exists():
        return write_profile_config(target, profile)
    try:
        current = read_config_file(target).profile
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    what = f"profile {current}" if current else "no profile recorded"
    if current == profile.name:
        return [f"kept existing config: {target} ({what})"]
    if opts.force:
        return write_profile_config(target, profile)
    question = f"Switch {target} ({what}) to profile {profile.name}? A backup is kept beside it."
    if interactive() and click.confirm(f"  {question}", default=True):
        return write_profile_config(target, profile)
    return [
        f"kept existing config: {target} ({what}); to switch to profile {profile.name} (a backup "
        f"is kept): hybrid-router setup --force, or hybrid-router init --profile {profile.name} "
        "--force"
    ]


def env_template_text() -> str:
    path = Path(home.templates_path()) / ENV_TEMPLATE
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return _FALLBACK_ENV_TEMPLATE


def write_env_template(path: Path) -> tuple[bool, str]:
    """Create `path` from the template with mode 600, only if it does not exist (never
    overwritten: it holds your keys). Returns (written, message)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        message = f"kept existing {path}"
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            message += f" (warning: mode {mode:o} lets others read it: chmod 600 {path})"
        return False, message
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(env_template_text())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True, f"wrote {path} (mode 600): put your API keys there"


# --- API keys ------------------------------------------------------------------------------------


@dataclass
class KeyStatus:
    name: str
    where: str | None  # "environment", ".env", or None (missing)
    kinds: list[str] = field(default_factory=list)


def key_statuses(config: RouterConfig, environ: Mapping[str, str], dotenv: Path) -> list[KeyStatus]:
    """Each `apiKeyEnv` the config names: set in the environment, in the home's .env, or not."""
    try:
        file_values = home.parse_dotenv(dotenv.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        file_values = {}
    statuses: dict[str, KeyStatus] = {}
    for provider in config.providers.values():
        if not provider.api_key_env:
            continue
        name = provider.api_key_env
        if name not in statuses:
            if environ.get(name):
                where: str | None = "environment"
            elif file_values.get(name):
                where = ".env"
            else:
                where = None
            statuses[name] = KeyStatus(name, where)
        if provider.kind not in statuses[name].kinds:
            statuses[name].kinds.append(provider.kind)
    return list(statuses.values())


# --- Ollama --------------------------------------------------------------------------------------


@dataclass
class OllamaStatus:
    provider: str
    url: str
    reachable: bool = False
    version: str | None = None
    installed: list[str] = field(default_factory=list)
    error: str | None = None
    wanted: list[str] = field(default_factory=list)  # the config's models on this provider

    def has(self, model: str) -> bool:
        from ..providers.chat import same_model

        return any(same_model(model, name) for name in self.installed)

    @property
    def missing(self) -> list[str]:
        return [model for model in self.wanted if not self.has(model)]


def ollama_targets(config: RouterConfig) -> dict[str, list[str]]:
    """Ollama provider name -> the models its tiers (and tier fallbacks) use, in config order."""
    from ..providers.probe import configured_backends

    return {
        name: models
        for name, models in configured_backends(config).items()
        if config.providers[name].kind == "ollama"
    }


async def detect_ollama(client: Any, name: str, provider: Provider, url: str) -> OllamaStatus:
    import httpx2 as httpx

    from ..providers.chat import BackendError, installed_models

    status = OllamaStatus(provider=name, url=url)
    timeout = httpx.Timeout(10.0, connect=provider.connect_timeout)
    try:
        response = await client.get(f"{url}/api/version", timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        status.error = "nothing is listening there"
        return status
    except httpx.HTTPError as exc:
        status.error = f"the connection failed: {type(exc).__name__}"
        return status
    except httpx.InvalidURL:
        status.error = "not a valid URL"
        return status
    try:
        data = response.json() if response.status_code == 200 else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        status.error = f"something answers there (HTTP {response.status_code}) but it is not Ollama"
        return status
    status.version = data["version"]
    try:
        status.installed = [m for m in await installed_models(client, provider, url, None) if m]
    except (BackendError, ValueError) as exc:
        status.error = f"cannot list its models: {exc}"
        return status
    status.reachable = True
    return status


def install_instructions(status: OllamaStatus) -> list[str]:
    lines = [f"Ollama is not reachable at {status.url}: {status.error}."]
    found = shutil.which("ollama")
    if found:
        lines.append(
            f"The `ollama` command is installed ({found}) but its server is not "
            "answering. Start it:"
        )
        lines.append("  ollama serve        (or open the Ollama app)")
    else:
        lines.append("Install it (setup never downloads it for you):")
        lines.append(f"  Linux:    {INSTALL_LINUX}")
        lines.append(f"  macOS:    {INSTALL_MACOS}        (or the app from {DOWNLOAD_PAGE})")
        lines.append(f"  Windows:  the installer from {DOWNLOAD_PAGE}")
        lines.append("then start it:")
        lines.append("  ollama serve")
    lines.append(
        f"If Ollama runs elsewhere, set OLLAMA_HOST (in your shell or in {home.dotenv_path()}). "
        "Then run `hybrid-router setup` again."
    )
    return lines


class PullProgress:
    """Bytes completed of total for one model, on stderr: a one-line bar redrawn in place on a
    terminal; otherwise a line at every quarter (logs and CI stay readable)."""

    def __init__(
        self, model: str, tty: bool | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.model = model
        self.tty = _stderr_is_tty() if tty is None else tty
        self.clock = clock
        self.last_draw = float("-inf")
        self.quarter = 0
        self.completed = 0
        self.total: int | None = None
        self.drawn = False

    def update(self, completed: int, total: int | None, status: str) -> None:
        self.completed, self.total = completed, total
        if self.tty:
            now = self.clock()
            if now - self.last_draw >= 0.1 or (total and completed >= total):
                self.last_draw = now
                click.echo("\r\x1b[K" + self._bar(), nl=False, err=True, color=True)
                self.drawn = True
            return
        if not total:
            return
        quarter = min(4, int(4 * completed / total))
        if quarter > self.quarter:
            self.quarter = quarter
            click.echo(f"  {self.model}: {self._amounts()}", err=True)

    def _amounts(self) -> str:
        total = self.total or 0
        percent = 100 * self.completed / total if total else 0.0
        return f"{human_bytes(self.completed)} of {human_bytes(total)} ({percent:.0f}%)"

    def _bar(self, width: int = 30) -> str:
        total = self.total or 0
        filled = int(width * self.completed / total) if total else 0
        return f"  {self.model} [{'#' * filled}{'.' * (width - filled)}] {self._amounts()}"

    def close(self) -> None:
        if self.tty and self.drawn:
            click.echo("", err=True)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


async def pull_models(
    client: Any, provider: Provider, url: str, models: list[str]
) -> dict[str, str | None]:
    """Pull each model with a progress bar; model -> None when done, else the error text."""
    from ..providers.chat import BackendError
    from ..providers.ollama import pull_model

    outcome: dict[str, str | None] = {}
    for model in models:
        click.echo(f"  pulling {model} ...")
        progress = PullProgress(model)

        async def on_progress(
            completed: int, total: int | None, status: str, progress: PullProgress = progress
        ) -> None:
            progress.update(completed, total, status)

        try:
            result = await pull_model(client, provider, url, model, on_progress)
        except BackendError as exc:
            progress.close()
            click.echo(f"  error: cannot pull {model}: {exc}", err=True)
            outcome[model] = str(exc)
            continue
        progress.close()
        if result.already_present:
            click.echo(f"  {model}: already installed")
        else:
            click.echo(f"  pulled {model} ({human_bytes(result.total_bytes)})")
        outcome[model] = None
    return outcome


# --- doctor --------------------------------------------------------------------------------------


def run_doctor(
    config: RouterConfig, environ: Mapping[str, str], no_tools: bool
) -> tuple[str, bool]:
    """What `hybrid-router doctor` does (probe, keep earlier tool results, save), as text."""
    from .doctor import probe_and_save, render_report

    return render_report(probe_and_save(config, environ, no_tools), config)


# --- the whole flow ------------------------------------------------------------------------------


def _roles(config: RouterConfig, provider: str, model: str) -> str:
    roles = [
        name
        for name, tier in config.tiers.items()
        if tier.provider == provider and tier.model == model
    ]
    roles += [
        f"{name} fallback"
        for name, tier in config.tiers.items()
        for fb in tier.fallbacks
        if fb.provider == provider and fb.model == model
    ]
    return ", ".join(roles)


def _download_sizes(profile: Profile | None, models: list[str]) -> str:
    """The download the pull question asks consent for: from the profile's figures when the
    config records a known profile."""
    facts = profile.spec.models if profile is not None else {}
    if not models or any(model not in facts for model in models):
        return "Each is several GB."
    total = sum(facts[model].download_gb for model in models)
    return f"{total:g} GB to download."


def run_setup(ctx: click.Context, opts: SetupOptions) -> int:
    """Run every step; return the exit code (0 ready, 3 Ollama missing, 4 not ready)."""
    import anyio
    import httpx2 as httpx

    from ..config.endpoints import provider_base_url
    from ..config.loading import ConfigError, load_config

    click.echo(f"hybrid-router setup (home: {home.home_dir()})")

    heading("Hardware and profile")
    from .hardware import detect
    from .profiles import load_or_fail, pick_profile

    hardware = detect()
    for line in hardware.lines():
        click.echo(f"  {line}")
    profiles = load_or_fail()
    picked = pick_profile(profiles, opts.profile, opts.memory_gb, hardware)
    click.echo(f"  {picked.line}")

    heading("Config")
    target = opts.config_file or home.config_path()
    for line in config_step(target, picked, opts):
        click.echo(f"  {line}")
    try:
        config = load_config(target).config
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    heading("Secrets file")
    dotenv = home.dotenv_path()
    _written, message = write_env_template(dotenv)
    click.echo(f"  {message}")
    environ = home.load_environment()

    heading("Ollama")
    targets = ollama_targets(config)
    statuses: list[OllamaStatus] = []
    if not targets:
        click.echo("  no tier uses an Ollama provider: nothing to check")

    async def detect_all() -> list[OllamaStatus]:
        async with httpx.AsyncClient(trust_env=False) as client:
            found = []
            for name, models in targets.items():
                provider = config.providers[name]
                status = await detect_ollama(
                    client, name, provider, provider_base_url(provider, environ)
                )
                status.wanted = models
                found.append(status)
            return found

    if targets:
        statuses = anyio.run(detect_all)
    for status in statuses:
        if not status.reachable:
            for line in install_instructions(status):
                click.echo(f"  {line}")
            continue
        installed = ", ".join(status.installed) if status.installed else "none"
        count = len(status.installed)
        click.echo(
            f"  Ollama {status.version} at {status.url} ({status.provider}): "
            f"{count} model{'s' if count != 1 else ''} installed: {installed}"
        )
        from ..providers.probe import ollama_serves_messages

        if ollama_serves_messages(status.version) is False:
            click.echo(
                "  note: this Ollama has no /v1/messages (added in 0.14); the proxy "
                "translates to its OpenAI API instead. Upgrading is recommended."
            )

    heading("Recommended models")
    pull_failures: list[str] = []
    for status in statuses:
        for model in status.wanted:
            state = "installed" if status.has(model) else "missing"
            if not status.reachable:
                state = "unknown"
            click.echo(f"  {model:<28} {state:<10} {_roles(config, status.provider, model)}")
    reachable = [s for s in statuses if s.reachable]
    to_pull = [(s, m) for s in reachable for m in s.missing]
    if not statuses:
        click.echo("  none")
    elif any(not s.reachable for s in statuses):
        click.echo("  not pulled: Ollama is not reachable")
    if to_pull:
        names = ", ".join(m for _, m in to_pull)
        sizes = _download_sizes(profiles.get(config.profile or ""), [m for _, m in to_pull])
        question = (
            f"Pull {len(to_pull)} model{'s' if len(to_pull) != 1 else ''} from Ollama's "
            f"library ({names})? {sizes}"
        )
        if consent(opts.pull, opts.yes, question, "--pull or --no-pull"):

            async def pull_all() -> None:
                async with httpx.AsyncClient(trust_env=False) as client:
                    for status in reachable:
                        if not status.missing:
                            continue
                        provider = config.providers[status.provider]
                        results = await pull_models(client, provider, status.url, status.missing)
                        for model, error in results.items():
                            if error is None:
                                status.installed.append(model)
                            else:
                                pull_failures.append(model)

            anyio.run(pull_all)
        else:
            click.echo(f"  not pulled; later: `ollama pull <model>` for {names}")
    elif reachable:
        click.echo("  all installed")

    heading("API keys")
    for key in key_statuses(config, os.environ, dotenv):
        if key.where:
            click.echo(f"  {key.name:<20} present ({key.where})")
        else:
            hints = "; ".join(KEY_HINTS[k] for k in key.kinds if k in KEY_HINTS)
            click.echo(
                f"  {key.name:<20} missing: add it to {dotenv}" + (f" ({hints})" if hints else "")
            )

    doctor_ok: bool | None = None
    if opts.doctor:
        heading("Doctor" + (" (no tool-call round trips)" if opts.no_tools else ""))
        text, doctor_ok = run_doctor(config, home.load_environment(), opts.no_tools)
        for line in text.splitlines():
            click.echo(f"  {line}".rstrip())

    heading("Claude Code")
    question = (
        f"Install the hooks, MCP server, status line and /route-stats into Claude Code "
        f"({opts.scope} scope)?"
    )
    if consent(opts.install, opts.yes, question, "--install or --no-install"):
        from .install import install

        ctx.invoke(install, scope=opts.scope)
    else:
        click.echo(f"  not installed; later: hybrid-router install --scope {opts.scope}")

    click.echo("")
    missing_ollama = [s for s in statuses if not s.reachable]
    if missing_ollama:
        click.echo(
            f"Error: Ollama is not reachable at {missing_ollama[0].url}: install and start "
            "it (see above), then run `hybrid-router setup` again",
            err=True,
        )
        return EXIT_OLLAMA_MISSING
    problems = []
    if pull_failures:
        problems.append(f"could not pull {', '.join(pull_failures)}")
    if doctor_ok is False:
        problems.append("doctor reports a tier that is not usable (see above)")
    elif doctor_ok is None:
        absent = [m for s in statuses for m in s.missing]
        if absent and not pull_failures:
            problems.append(f"models not installed: {', '.join(absent)}")
    if problems:
        click.echo(f"Error: setup finished, but not ready: {'; '.join(problems)}", err=True)
        return EXIT_NOT_READY
    click.echo(
        "Setup complete: the router is ready. Try `hybrid-router demo` or `hybrid-router monitor`."
    )
    return EXIT_OK
