"""Compiling a validated RouterConfig into the plain-data RoutingTable that `decide` runs on.

The table lives in `core` (stdlib only) so the prompt hook can load it from a `marshal` cache;
compiling it needs the config schema, so it happens here, once per config object.
"""

from __future__ import annotations

from ..core.matching import Matcher
from ..core.table import ModelRef, RouteSpec, RoutingTable, Target
from .schema import Route, RouterConfig
from .schema import Target as TargetConfig

_CACHE_ATTRIBUTE = "_routing_table"


def _tier_target(name: str, config: RouterConfig) -> Target:
    tier = config.tiers[name]
    fallbacks = tuple(_fallback_ref(fallback, config) for fallback in tier.fallbacks)
    return Target(tier.provider, tier.model, name, tier.context_window, fallbacks)


def _fallback_ref(target: TargetConfig, config: RouterConfig) -> ModelRef:
    if target.tier is not None:
        tier = config.tiers[target.tier]
        return ModelRef(tier.provider, tier.model, tier.context_window)
    assert target.provider is not None and target.model is not None  # checked at load time
    return ModelRef(target.provider, target.model, target.context_window)


def resolve_target(target: TargetConfig, config: RouterConfig) -> Target:
    """A route target as a destination: a tier, or an explicit provider+model (which inherits a
    tier's window and fallbacks when a tier names the same model)."""
    if target.tier is not None:
        return _tier_target(target.tier, config)
    assert target.provider is not None and target.model is not None  # checked at load time
    for name, tier in config.tiers.items():
        if tier.provider == target.provider and tier.model == target.model:
            resolved = _tier_target(name, config)
            if target.context_window:
                return resolved.replace(context_window=target.context_window)
            return resolved
    return Target(target.provider, target.model, None, target.context_window, ())


def compile_route(route: Route, config: RouterConfig) -> RouteSpec:
    conditions = route.conditions
    near = [(n.first, n.second, n.within) for n in conditions.near]
    matcher = Matcher.build(conditions.keywords, conditions.exclude, near)
    return RouteSpec(
        route.name,
        resolve_target(route.target, config),
        matcher,
        tuple(conditions.patterns),
        tuple(conditions.complexity),
        conditions.min_context_tokens,
        conditions.max_context_tokens,
    )


def compile_table(config: RouterConfig) -> RoutingTable:
    return RoutingTable(
        tiers=tuple((name, _tier_target(name, config)) for name in config.tiers),
        provider_kinds={name: provider.kind for name, provider in config.providers.items()},
        routes=tuple(compile_route(route, config) for route in config.routes),
        default_route=compile_route(config.default_route, config),
        web_tools_target=resolve_target(config.web_tools_target, config),
        background_patterns=tuple(p.lower() for p in config.background.model_patterns),
        background_target=resolve_target(config.background.target, config),
        output_reserve_tokens=config.output_reserve_tokens,
        free_cloud_on_size=config.free_cloud_on_size,
    )


def routing_table(config: RouterConfig) -> RoutingTable:
    """The config's table, compiled once and kept on the (frozen) config object."""
    table = config.__dict__.get(_CACHE_ATTRIBUTE)
    if table is None:
        table = compile_table(config)
        object.__setattr__(config, _CACHE_ATTRIBUTE, table)
    return table


def tier_fallbacks(name: str, config: RouterConfig) -> tuple[ModelRef, ...]:
    """The fallback chain configured for a tier."""
    return routing_table(config).tier(name).fallbacks
