"""Loading the router configuration: the user's file, or the embedded default, validated into
the schema, with errors of one line that name the file and the field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import home, patterns
from .schema import RouterConfig, Target

if TYPE_CHECKING:
    from types import ModuleType

    from pydantic import ValidationError


def regex_engine() -> ModuleType:
    """The `regex` package: config patterns are matched with a time limit (core/patterns.py)."""
    import regex

    return regex


# Whatever loads a config (the proxy, the MCP server, the CLI) matches its patterns safely.
patterns.use_engine(regex_engine)


class ConfigError(Exception):
    """A configuration problem, already phrased as one line for the user."""


@dataclass(frozen=True)
class LoadedConfig:
    config: RouterConfig
    source: Path | None  # None when the embedded default is in use


def templates_dir() -> Path:
    """`settings-templates/`: inside the installed wheel, or at the top of a source checkout."""
    return Path(home.templates_path())


def default_config_path() -> Path:
    return templates_dir() / home.CONFIG_FILENAME


def _format_location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _describe_error(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    got = error.get("input")
    if kind == "missing":
        return "is required but missing"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return "is not a known field (check the spelling)"
    message = str(error.get("msg", "is invalid"))
    message = message[0].lower() + message[1:] if message else message
    shown = json.dumps(got) if isinstance(got, (str, int, float, bool)) or got is None else None
    if shown is not None and len(shown) <= 60:
        return f"expected: {message}; got {shown}"
    return f"expected: {message}"


def _pydantic_location(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """An error location without pydantic's internal steps (dataclass arguments, union branches)."""
    cleaned: list[Any] = []
    for part in loc:
        if part in ("dataclass-arguments", "dataclass-fields") or (
            isinstance(part, str) and (part.startswith("function-") or "[" in part)
        ):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def validation_message(error: ValidationError, source: str) -> str:
    """A pydantic validation error as one line: the file, the first field and what it expected,
    and how many more problems there are."""
    errors = error.errors()
    first = errors[0]
    where = _format_location(_pydantic_location(tuple(first["loc"])))
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"{source}: {where} {_describe_error(first)}{more if len(errors) > 1 else ''}"


def parse_config(data: Any, source: str) -> RouterConfig:
    """Validate JSON data into a RouterConfig, or raise ConfigError naming `source` and field."""
    from pydantic import TypeAdapter, ValidationError

    if isinstance(data, dict) and "$schema" in data:
        data = {("schema" if key == "$schema" else key): value for key, value in data.items()}
    try:
        config = TypeAdapter(RouterConfig).validate_python(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, source)) from None
    _check_references(config, source)
    return config


def _check_target(target: Target, where: str, config: RouterConfig, source: str) -> None:
    if target.tier is not None:
        if target.provider is not None or target.model is not None or target.context_window:
            raise ConfigError(f"{source}: {where} expected either tier or provider+model, not both")
        if target.tier not in config.tiers:
            known = ", ".join(config.tiers)
            raise ConfigError(
                f"{source}: {where}.tier unknown tier {target.tier!r} (known: {known})"
            )
        return
    if target.provider is None or target.model is None:
        raise ConfigError(f"{source}: {where} expected a tier, or both provider and model")
    if target.provider not in config.providers:
        known = ", ".join(config.providers)
        raise ConfigError(
            f"{source}: {where}.provider unknown provider {target.provider!r} (known: {known})"
        )


def _check_references(config: RouterConfig, source: str) -> None:
    """Cross-field checks pydantic cannot express: every name used must be defined."""
    for name, tier in config.tiers.items():
        if tier.provider not in config.providers:
            known = ", ".join(config.providers)
            raise ConfigError(
                f"{source}: tiers.{name}.provider unknown provider {tier.provider!r} "
                f"(known: {known})"
            )
        for index, fallback in enumerate(tier.fallbacks):
            _check_target(fallback, f"tiers.{name}.fallbacks[{index}]", config, source)
    if config.premium_tier not in config.tiers:
        raise ConfigError(
            f"{source}: premiumTier unknown tier {config.premium_tier!r} "
            f"(known: {', '.join(config.tiers)})"
        )
    seen: set[str] = set()
    for index, route in enumerate(config.routes):
        where = f"routes[{index}]"
        if route.name in seen:
            raise ConfigError(f"{source}: {where}.name duplicate route name {route.name!r}")
        seen.add(route.name)
        _check_target(route.target, f"{where}.target", config, source)
        for p_index, pattern in enumerate(route.conditions.patterns):
            problem = patterns.problem(regex_engine(), pattern)
            if problem is not None:
                raise ConfigError(f"{source}: {where}.conditions.patterns[{p_index}] {problem}")
        low, high = route.conditions.min_context_tokens, route.conditions.max_context_tokens
        if low is not None and high is not None and low > high:
            raise ConfigError(
                f"{source}: {where}.conditions expected minContextTokens <= maxContextTokens"
            )
    _check_target(config.default_route.target, "defaultRoute.target", config, source)
    _check_target(config.web_tools_target, "webToolsTarget", config, source)
    _check_target(config.background.target, "background.target", config, source)
    if config.proxy.last_resort is not None:
        _check_target(config.proxy.last_resort, "proxy.lastResort", config, source)


def read_config_file(path: Path) -> RouterConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    return parse_config(data, str(path))


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """The user's config file if there is one (or `path`), else the embedded default."""
    if path is not None:
        return LoadedConfig(read_config_file(path), path)
    user_file = home.config_path(environ)
    if user_file.exists():
        return LoadedConfig(read_config_file(user_file), user_file)
    return LoadedConfig(read_config_file(default_config_path()), None)
