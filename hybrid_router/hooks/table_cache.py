"""The routing table and hook settings, loaded from a `marshal` cache in the home.

Validating router-config.json needs pydantic (about 0.2 s with its import), far beyond a
hook's budget. So the first hook after the config changes validates it, compiles the routing
table to plain data and caches that; every later hook reads the cache (about 1 ms). The cache is
keyed by the config file's path, size and modification time, the package version and the Python
version, so an edited config or an upgrade rebuilds it.
"""

from __future__ import annotations

import marshal
import os
import sys

from .. import __version__
from ..core import home
from ..core.table import LOCAL_PROVIDER_KINDS, RoutingTable, Target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..config.schema import RouterConfig
    from ..core.intent import IntentModel

CACHE_DIRNAME = "cache"
CACHE_FILENAME = "routing-table.marshal"


class HookSettings:
    """What the hooks need beyond the routing table itself."""

    __slots__ = (
        "directive_targets",
        "hint_routes",
        "intent",
        "pin_ttl_seconds",
        "premium_model",
        "store_prompts",
        "table",
    )

    def __init__(
        self,
        table: RoutingTable,
        hint_routes: tuple[str, ...],
        pin_ttl_seconds: float,
        store_prompts: bool,
        premium_model: str,
        directive_targets: dict[str, Target],
    ) -> None:
        self.table = table
        self.hint_routes = hint_routes
        self.pin_ttl_seconds = pin_ttl_seconds
        self.store_prompts = store_prompts
        self.premium_model = premium_model
        self.directive_targets = directive_targets  # "@local" / "@claude" / "@openrouter" -> Target
        # The intent signal (core/intent.py), set by `load_settings`: None routes on keywords alone.
        self.intent: IntentModel | None = None

    def is_local(self, provider: str) -> bool:
        return self.table.provider_kinds.get(provider) in LOCAL_PROVIDER_KINDS

    def to_data(self) -> tuple[Any, ...]:
        """Plain data (tuples, dicts, strings, numbers) that `marshal` can write."""
        targets = {name: target.to_data() for name, target in self.directive_targets.items()}
        return (
            self.table.to_data(),
            self.hint_routes,
            self.pin_ttl_seconds,
            self.store_prompts,
            self.premium_model,
            targets,
        )

    @classmethod
    def from_data(cls, data: tuple[Any, ...]) -> HookSettings:
        table, hints, ttl, store_prompts, premium, targets = data
        return cls(
            RoutingTable.from_data(table),
            hints,
            ttl,
            store_prompts,
            premium,
            {name: Target.from_data(t) for name, t in targets.items()},
        )


def config_source(environ: dict[str, str]) -> str:
    """The config in effect: $HYBRID_ROUTER_CONFIG, the home's file, or the embedded default."""
    explicit = environ.get("HYBRID_ROUTER_CONFIG", "").strip()
    if explicit:
        return explicit
    user_file = os.path.join(home.home_path(environ), home.CONFIG_FILENAME)
    if os.path.exists(user_file):
        return user_file
    return os.path.join(home.templates_path(), home.CONFIG_FILENAME)


def _cache_key(source: str) -> tuple[Any, ...]:
    stat = os.stat(source)
    return (
        __version__,
        sys.version_info[:3],
        os.path.abspath(source),
        stat.st_size,
        stat.st_mtime_ns,
    )


def load_settings(environ: dict[str, str]) -> HookSettings:
    """The hook settings, with the intent model in effect (its own cache file, keyed by
    the shipped weights and the home's intent-examples.jsonl: see core/intent.py)."""
    from ..core.intent import load_model

    settings = _load_table_settings(environ)
    settings.intent = load_model(environ)
    return settings


def _load_table_settings(environ: dict[str, str]) -> HookSettings:
    source = config_source(environ)
    key = _cache_key(source)
    cache_file = os.path.join(home.home_path(environ), CACHE_DIRNAME, CACHE_FILENAME)
    try:
        with open(cache_file, "rb") as handle:
            cached_key, data = marshal.load(handle)
        if cached_key == key:
            return HookSettings.from_data(data)
    except (OSError, EOFError, ValueError, TypeError):
        pass  # no cache yet, or one from another version: rebuilt below
    settings = build_settings(source)
    _write_cache(cache_file, key, settings)
    return settings


def _write_cache(cache_file: str, key: tuple[Any, ...], settings: HookSettings) -> None:
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        temporary = f"{cache_file}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            marshal.dump((key, settings.to_data()), handle)
        os.replace(temporary, cache_file)  # atomic: a concurrent hook sees the old or the new
    except OSError:
        pass  # a read-only home only costs speed


def build_settings(source: str) -> HookSettings:
    """The slow path: validate the config (pydantic) and compile it."""
    from pathlib import Path

    from ..config.compile import compile_table, resolve_target
    from ..config.endpoints import is_local
    from ..config.loading import load_config

    config = load_config(Path(source)).config
    table = compile_table(config)
    premium = table.tier(config.premium_tier)
    targets = {"@claude": premium}
    default_target = resolve_target(config.default_route.target, config)
    if is_local(config.providers[default_target.provider]):
        targets["@local"] = default_target
    else:
        local = [t for _, t in table.tiers if is_local(config.providers[t.provider])]
        if local:
            targets["@local"] = local[0]
    openrouter = _first_openrouter(config, table)
    if openrouter is not None:
        targets["@openrouter"] = openrouter
    return HookSettings(
        table,
        tuple(config.hooks.hint_routes),
        config.hooks.pin_ttl_hours * 3600,
        config.store_prompts,
        premium.model,
        targets,
    )


def _first_openrouter(config: RouterConfig, table: RoutingTable) -> Target | None:
    """The first OpenRouter model the config names: a tier on OpenRouter, else a tier's fallback."""
    kinds = table.provider_kinds
    for name, target in table.tiers:
        if kinds.get(target.provider) == "openrouter":
            return target
    for _, target in table.tiers:
        for ref in target.fallbacks:
            if kinds.get(ref.provider) == "openrouter":
                return Target(ref.provider, ref.model, None, None, ())
    return None
