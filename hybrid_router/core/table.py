"""The compiled routing table: the plain data `decide` runs on (see routing.py).

Records and tuples only, stdlib only, so that the prompt hook can load a table from its
`marshal` cache (`to_data` / `from_data`) without the config schema or pydantic; config/compile.py
builds one from a validated config.
"""

from __future__ import annotations

from .matching import Matcher
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the prompt hook more than it can afford
    from typing import Any

TABLE_FORMAT = 2  # bump when RoutingTable.to_data changes shape
# Provider kinds that run on the user's machine: free, and never sent the client's secrets.
LOCAL_PROVIDER_KINDS = frozenset({"ollama", "openai"})
FREE_MODEL_SUFFIX = ":free"  # OpenRouter's free variants


class ModelRef(Record, frozen=True):
    """A model on a provider: one link of a fallback chain."""

    provider: str
    model: str
    context_window: int | None = None  # when the config states it (free cloud models do)

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model}


class Target(Record, frozen=True):
    """A resolved destination: provider, model, its tier (if any), window and fallback chain."""

    provider: str
    model: str
    tier: str | None
    context_window: int | None
    fallbacks: tuple[ModelRef, ...]

    def to_data(self) -> tuple[Any, ...]:
        fallbacks = tuple((ref.provider, ref.model, ref.context_window) for ref in self.fallbacks)
        return (self.provider, self.model, self.tier, self.context_window, fallbacks)

    @classmethod
    def from_data(cls, data: tuple[Any, ...]) -> Target:
        provider, model, tier, window, fallbacks = data
        refs = tuple(ModelRef(p, m, w) for p, m, w in fallbacks)
        return cls(provider, model, tier, window, refs)


class RouteSpec(Record, frozen=True):
    """One compiled route: its conditions as matchers and bounds, and its resolved target."""

    name: str
    target: Target
    matcher: Matcher
    patterns: tuple[str, ...]
    complexity: tuple[str, ...]
    min_tokens: int | None
    max_tokens: int | None

    def to_data(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.target.to_data(),
            self.matcher.to_data(),
            self.patterns,
            self.complexity,
            self.min_tokens,
            self.max_tokens,
        )

    @classmethod
    def from_data(cls, data: tuple[Any, ...]) -> RouteSpec:
        name, target, matcher, patterns, complexity, low, high = data
        return cls(
            name,
            Target.from_data(target),
            Matcher.from_data(matcher),
            patterns,
            complexity,
            low,
            high,
        )


class RoutingTable(Record, frozen=True):
    """Everything `decide` needs, as plain data (see the module docstring)."""

    tiers: tuple[tuple[str, Target], ...]  # in escalation order
    provider_kinds: dict[str, str]  # provider name -> kind (ollama, openai, openrouter, anthropic)
    routes: tuple[RouteSpec, ...]
    default_route: RouteSpec
    web_tools_target: Target
    background_patterns: tuple[str, ...]
    background_target: Target
    output_reserve_tokens: int
    # A request too large for every local window tries the tiers' free cloud models whose
    # window fits before the premium tier (config `freeCloudOnSize`; the proxy turns it off
    # when no OpenRouter key is set).
    free_cloud_on_size: bool = True

    def to_data(self) -> tuple[Any, ...]:
        return (
            TABLE_FORMAT,
            tuple((name, target.to_data()) for name, target in self.tiers),
            self.provider_kinds,
            tuple(route.to_data() for route in self.routes),
            self.default_route.to_data(),
            self.web_tools_target.to_data(),
            self.background_patterns,
            self.background_target.to_data(),
            self.output_reserve_tokens,
            self.free_cloud_on_size,
        )

    @classmethod
    def from_data(cls, data: tuple[Any, ...]) -> RoutingTable:
        version, tiers, kinds, routes, default, web, patterns, background, reserve, free = data
        if version != TABLE_FORMAT:
            raise ValueError(f"routing table format {version}, expected {TABLE_FORMAT}")
        return cls(
            tuple((name, Target.from_data(t)) for name, t in tiers),
            kinds,
            tuple(RouteSpec.from_data(r) for r in routes),
            RouteSpec.from_data(default),
            Target.from_data(web),
            patterns,
            Target.from_data(background),
            reserve,
            free,
        )

    def tier(self, name: str) -> Target:
        for tier_name, target in self.tiers:
            if tier_name == name:
                return target
        raise KeyError(name)

    def route(self, name: str) -> RouteSpec:
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)
