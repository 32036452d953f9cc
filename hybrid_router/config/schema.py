"""The router configuration's schema: frozen dataclasses that pydantic validates at load time.

Plain dataclasses, so that code reading a loaded config never imports pydantic; pydantic is
imported lazily, inside `loading.parse_config`. (The prompt hook does not even load the config:
it reads the compiled routing table from a `marshal` cache, hooks/table_cache.py.)

JSON keys are camelCase (`maxContextTokens`, `contextWindow`), as in the seed's
`router-config.json`; the Python attributes are their snake_case twins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import annotated_types as constraints

Complexity = Literal["low", "medium", "high"]
ProviderKind = Literal["ollama", "openai", "openrouter", "anthropic"]

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
    """A term of `first` and one of `second` within `within` words of each other, either order."""

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
    """A named model slot (fast, coder, reasoning, premium). File order = escalation order."""

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
    # The API the proxy speaks to this backend. auto: Anthropic's Messages API for `anthropic`;
    # Ollama's native /api/chat for `ollama` (the only Ollama API that sets the context window
    # per request: its /v1 endpoints run at the server's default and silently drop what does
    # not fit); OpenAI chat completions otherwise. `anthropic` suits OpenAI-compatible servers
    # that also serve /v1/messages (llama.cpp's llama-server) and Ollama 0.14+ run with an
    # OLLAMA_CONTEXT_LENGTH that holds every request.
    protocol: Literal["auto", "anthropic", "openai", "ollama"] = "auto"


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
    # Web pages that may call the proxy (an `Origin` such as "http://localhost:5173"): a request
    # a browser sends from any other page is refused, since any page can reach 127.0.0.1.
    allowed_origins: tuple[NonEmptyStr, ...] = ()
    # Host names besides the loopback ones that the proxy answers to while it has no token (a
    # rebound DNS name is refused); with HYBRID_ROUTER_TOKEN the token is the gate instead.
    allowed_hosts: tuple[NonEmptyStr, ...] = ()
    # A 429 whose Retry-After is at most this is waited out once on the same link.
    max_retry_after_seconds: Annotated[float, constraints.Ge(0)] = 2.0
    probe_on_start: bool = True
    # Answers from a link that is not Anthropic, to a request offering tools, are checked before
    # the client sees them (a broken tool call moves down the chain): "hold" checks them all,
    # holding a stream until its answer is whole (pings meanwhile); "stream" lets streams flow
    # unchecked, for first tokens early, and checks only whole answers; "off" checks nothing.
    check_answers: Literal["hold", "stream", "off"] = "hold"


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
    # A request too large for every local window tries the tiers' OpenRouter `:free` fallbacks
    # whose `contextWindow` fits before the premium tier. Free endpoints may keep what they are
    # sent: false sends such requests to the premium tier instead.
    free_cloud_on_size: bool = True
    prices: dict[str, Price] = field(default_factory=dict)
    delegate: Delegate = field(default_factory=Delegate)
    hooks: Hooks = field(default_factory=Hooks)
    proxy: Proxy = field(default_factory=Proxy)
    store_prompts: bool = False
    # The model profile the tiers came from (`hybrid-router init --profile`), so `doctor` and
    # `setup` can compare the machine and the installed models with it. None: hand-made tiers.
    profile: NonEmptyStr | None = None
    schema: str | None = None  # "$schema", tolerated for editors
