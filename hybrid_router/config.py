"""The router configuration: schema, loading, and errors that name the file and the field.

The schema is plain frozen dataclasses so that the routing code (and the Claude Code hooks, which
run as a fresh process on every event) can use a loaded config without importing pydantic.
pydantic validates those same dataclasses when a file is loaded; it is imported lazily, inside
`parse_config`.

JSON keys are camelCase (`maxContextTokens`, `contextWindow`), as in the seed's
`router-config.json`; the Python attributes are their snake_case twins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types as constraints

from . import home

Complexity = Literal["low", "medium", "high"]
ProviderKind = Literal["ollama", "openai", "openrouter", "anthropic"]
LOCAL_PROVIDER_KINDS = frozenset({"ollama", "openai"})

PositiveInt = Annotated[int, constraints.Gt(0)]
PositiveFloat = Annotated[float, constraints.Gt(0)]
NonNegativeFloat = Annotated[float, constraints.Ge(0)]
NonEmptyStr = Annotated[str, constraints.MinLen(1)]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Read by pydantic when it validates these dataclasses; a plain dict keeps pydantic out of the
# import path.
_STRICT = {"extra": "forbid", "alias_generator": _camel, "populate_by_name": True}


@dataclass(frozen=True)
class Target:
    """Where a route sends a request: a model tier, or an explicit provider and model."""

    __pydantic_config__ = _STRICT
    tier: str | None = None
    provider: str | None = None
    model: str | None = None
    # For an explicit provider+model that is not a tier: its window, when it should be checked.
    context_window: PositiveInt | None = None


@dataclass(frozen=True)
class Near:
    """A term of `first` and a term of `second` within `within` words of each other, either order."""

    __pydantic_config__ = _STRICT
    first: tuple[NonEmptyStr, ...]
    second: tuple[NonEmptyStr, ...]
    within: Annotated[int, constraints.Ge(0), constraints.Le(50)] = 6


@dataclass(frozen=True)
class Conditions:
    """When a route applies. Every condition that is set must hold.

    `keywords`, `near` and `patterns` together form one condition (any may hit). `exclude` lists
    phrases in which a keyword or pattern does not count ("open source" is not a file operation).
    `patterns` are regular expressions: they cost the prompt hook a compile on every prompt, so
    the defaults use keywords and `near` instead.
    """

    __pydantic_config__ = _STRICT
    keywords: tuple[NonEmptyStr, ...] = ()
    patterns: tuple[NonEmptyStr, ...] = ()
    exclude: tuple[NonEmptyStr, ...] = ()
    near: tuple[Near, ...] = ()
    complexity: tuple[Complexity, ...] = ()
    min_context_tokens: PositiveInt | None = None
    max_context_tokens: PositiveInt | None = None


@dataclass(frozen=True)
class Route:
    __pydantic_config__ = _STRICT
    name: NonEmptyStr
    target: Target
    description: str = ""
    conditions: Conditions = field(default_factory=Conditions)
    reasoning: str = ""


@dataclass(frozen=True)
class Tier:
    """A named model slot (fast, coder, reasoning, premium). Order in the file = escalation order."""

    __pydantic_config__ = _STRICT
    provider: NonEmptyStr
    model: NonEmptyStr
    context_window: PositiveInt
    fallbacks: tuple[Target, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Provider:
    __pydantic_config__ = _STRICT
    kind: ProviderKind
    base_url: NonEmptyStr
    base_url_env: str | None = None
    api_key_env: str | None = None
    connect_timeout: PositiveFloat = 5.0
    read_timeout: PositiveFloat = 300.0
    description: str = ""
    # The API the proxy speaks to this backend. auto: Anthropic's Messages API for `anthropic`,
    # and for `ollama` when it is 0.14 or later; OpenAI chat completions otherwise. `anthropic`
    # suits OpenAI-compatible servers that also serve /v1/messages (llama.cpp's llama-server).
    protocol: Literal["auto", "anthropic", "openai"] = "auto"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    __pydantic_config__ = _STRICT
    input: NonNegativeFloat
    output: NonNegativeFloat
    cache_read: NonNegativeFloat | None = None
    cache_write: NonNegativeFloat | None = None


@dataclass(frozen=True)
class Background:
    """Claude Code's background requests (titles, summaries): what marks them and where they go."""

    __pydantic_config__ = _STRICT
    model_patterns: tuple[NonEmptyStr, ...] = ("haiku",)
    target: Target = field(default_factory=lambda: Target(tier="fast"))


@dataclass(frozen=True)
class Delegate:
    """Limits of the MCP `delegate_to_local` tool."""

    __pydantic_config__ = _STRICT
    max_file_bytes: PositiveInt = 262_144
    max_total_file_bytes: PositiveInt = 1_048_576
    allow_outside_working_directory: bool = False
    default_max_tokens: Annotated[int, constraints.Ge(16), constraints.Le(65_536)] = 2048


@dataclass(frozen=True)
class Hooks:
    """The Claude Code hooks: which routes earn the delegate_to_local hint, how long pins live."""

    __pydantic_config__ = _STRICT
    hint_routes: tuple[NonEmptyStr, ...] = ("file-operations", "code-generation")
    pin_ttl_hours: PositiveFloat = 12.0


@dataclass(frozen=True)
class Proxy:
    """The Anthropic-compatible proxy (`hybrid-router proxy`)."""

    __pydantic_config__ = _STRICT
    host: NonEmptyStr = "127.0.0.1"
    port: Annotated[int, constraints.Ge(0), constraints.Le(65535)] = 3000
    # The last link of every chain that does not already end at Anthropic (None: no last resort).
    last_resort: Target | None = field(default_factory=lambda: Target(tier="premium"))
    # While an upstream is silent (slow local prefill), a `ping` event goes out this often, so
    # Claude Code's idle abort (300 s) never fires.
    ping_interval_seconds: PositiveFloat = 10.0
    # How long to wait for an upstream's first event before committing to a 200 SSE response.
    first_byte_grace_seconds: PositiveFloat = 5.0
    max_body_bytes: PositiveInt = 33_554_432
    # A 429 whose Retry-After is at most this is waited out once on the same link.
    max_retry_after_seconds: Annotated[float, constraints.Ge(0)] = 2.0
    probe_on_start: bool = True


@dataclass(frozen=True)
class RouterConfig:
    __pydantic_config__ = _STRICT
    providers: dict[str, Provider]
    tiers: dict[str, Tier]
    routes: tuple[Route, ...]
    default_route: Route
    premium_tier: str = "premium"
    web_tools_target: Target = field(default_factory=lambda: Target(tier="premium"))
    background: Background = field(default_factory=Background)
    # Room kept for the answer when checking that a request fits a context window: the smaller of
    # this and the request's max_tokens (Claude Code asks for 32k-64k, which no local model has).
    output_reserve_tokens: Annotated[int, constraints.Ge(0)] = 4096
    prices: dict[str, Price] = field(default_factory=dict)
    delegate: Delegate = field(default_factory=Delegate)
    hooks: Hooks = field(default_factory=Hooks)
    proxy: Proxy = field(default_factory=Proxy)
    store_prompts: bool = False
    schema: str | None = None  # "$schema", tolerated for editors


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
    """Drop pydantic's internal steps (dataclass arguments, union branches) from an error location."""
    cleaned: list[Any] = []
    for part in loc:
        if part in ("dataclass-arguments", "dataclass-fields") or (
            isinstance(part, str) and (part.startswith("function-") or "[" in part)
        ):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def parse_config(data: Any, source: str) -> RouterConfig:
    """Validate raw JSON data into a RouterConfig, or raise ConfigError naming `source` and field."""
    from pydantic import TypeAdapter, ValidationError

    if isinstance(data, dict) and "$schema" in data:
        data = {("schema" if key == "$schema" else key): value for key, value in data.items()}
    try:
        config = TypeAdapter(RouterConfig).validate_python(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = _format_location(_pydantic_location(tuple(first["loc"])))
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ConfigError(
            f"{source}: {where} {_describe_error(first)}{more if len(errors) > 1 else ''}"
        ) from None
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
    import re

    for name, tier in config.tiers.items():
        if tier.provider not in config.providers:
            known = ", ".join(config.providers)
            raise ConfigError(
                f"{source}: tiers.{name}.provider unknown provider {tier.provider!r} (known: {known})"
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
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"{source}: {where}.conditions.patterns[{p_index}] "
                    f"expected a regular expression; {exc}"
                ) from None
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


def normalize_base_url(value: str, kind: str) -> str:
    """Accept `host`, `host:port` or a URL (Ollama's OLLAMA_HOST allows all three)."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = f"http://{value}"
        if kind == "ollama" and value.count(":") == 1:
            value += ":11434"
    return value


def provider_base_url(provider: Provider, environ: Mapping[str, str] | None = None) -> str:
    """The provider's base URL, overridden by its environment variable when that is set."""
    env = os.environ if environ is None else environ
    override = env.get(provider.base_url_env, "").strip() if provider.base_url_env else ""
    return normalize_base_url(override or provider.base_url, provider.kind)


def provider_api_key(provider: Provider, environ: Mapping[str, str]) -> str | None:
    """The provider's key from the environment (or the home `.env`); never logged or printed."""
    if not provider.api_key_env:
        return None
    return environ.get(provider.api_key_env) or None


def is_local(provider: Provider) -> bool:
    return provider.kind in LOCAL_PROVIDER_KINDS
