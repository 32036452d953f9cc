"""Model profiles: named tier tables sized to a machine's memory, kept as data in
`settings-templates/profiles/` (one JSON file each: `8gb`, `16gb`, `32gb`, `64gb`, `seed`).

A profile is only worth choosing if its numbers are right, so each file carries the figures that
size it and where each came from: per local model its download size, its tool-call capability,
its longest context, its KV-cache geometry, the window its tiers run with and the memory that
needs; per profile the models that stay loaded together and their sum. Loading checks that the
arithmetic holds (a stated figure that disagrees with its own inputs is an error naming the file
and the field), so the data cannot drift from the formula:

    KV bytes per token = 2 (K and V) x KV-bearing layers x KV heads x head dim x bytes per element
    model memory (GB)  = download size + KV bytes per token x window / 1e9 + runtime allowance
    profile memory     = the sum over the distinct local models its tiers use

GB means 10^9 bytes throughout, as Ollama's library lists sizes. Tiers that share a model share
its window: Ollama reloads a loaded model when a request asks for a different `num_ctx`.

`render_config` turns a profile into a full router config: the embedded default with the
profile's tiers and its name recorded (`"profile"`), and the profile's `large-context` route
(the seed's) or none, leaving size to the context-window rule.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.table import LOCAL_PROVIDER_KINDS
from .loading import (
    ConfigError,
    default_config_path,
    parse_config,
    templates_dir,
    validation_message,
)
from .schema import (
    _STRICT,
    NonEmptyStr,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Route,
    Tier,
)

PROFILES_DIRNAME = "profiles"
# The tiers every profile defines, in escalation order (the routes and hooks name them).
REQUIRED_TIERS = ("fast", "coder", "reasoning", "premium")
# Ollama loads at most this many models at once by default (OLLAMA_MAX_LOADED_MODELS: 3 per GPU,
# 3 for CPU inference); a profile whose local tiers need more would keep swapping models.
OLLAMA_DEFAULT_MAX_LOADED_MODELS = 3
LARGE_CONTEXT_ROUTE = "large-context"
GB = 1_000_000_000
# Stated figures have two decimals: a difference above rounding is a wrong figure.
_TOLERANCE_GB = 0.011


class ProfileError(ConfigError):
    """A profile file that is invalid, or a profile name or size that matches none."""


@dataclass(frozen=True)
class KvCache:
    """What one token costs in the KV cache: only layers with full attention keep every token
    (sliding-window and linear-attention layers keep a fixed amount, inside the runtime
    allowance)."""

    __pydantic_config__ = _STRICT
    layers: PositiveInt
    kv_heads: PositiveInt
    head_dim: PositiveInt
    bytes_per_token: PositiveInt
    source: NonEmptyStr
    bytes_per_element: PositiveInt = 2  # f16, Ollama's default OLLAMA_KV_CACHE_TYPE

    def computed_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_element


@dataclass(frozen=True)
class ModelFacts:
    """A local model of a profile: what it is, where each figure came from, and what it needs
    at the window the profile runs it with."""

    __pydantic_config__ = _STRICT
    download_gb: PositiveFloat
    download_source: NonEmptyStr
    tools: bool
    tools_source: NonEmptyStr
    max_context_tokens: PositiveInt
    max_context_source: NonEmptyStr
    kv_cache: KvCache
    window: PositiveInt
    memory_gb: PositiveFloat
    memory_source: NonEmptyStr
    thinking: bool = False  # answers with reasoning first (a signature-less thinking block)

    def kv_gb(self, window: int | None = None) -> float:
        return self.kv_cache.bytes_per_token * (window or self.window) / GB


@dataclass(frozen=True)
class CloudModel:
    """A free cloud fallback whose window the profile states (so a request too large for every
    local window can go there before the premium tier)."""

    __pydantic_config__ = _STRICT
    context_window: PositiveInt
    source: NonEmptyStr


@dataclass(frozen=True)
class ProfileMemory:
    __pydantic_config__ = _STRICT
    required_gb: PositiveFloat
    loaded_together: tuple[NonEmptyStr, ...]
    overhead_gb_per_model: NonNegativeFloat
    overhead_source: NonEmptyStr
    assumption: NonEmptyStr


@dataclass(frozen=True)
class ProfileSpec:
    """One profile file, as written."""

    __pydantic_config__ = _STRICT
    name: NonEmptyStr
    description: NonEmptyStr
    # The memory class the profile is sized for (GB); None for a profile not sized to one.
    memory_gb: PositiveInt | None
    # Whether detection and `--memory-gb` may pick it (the seed's 2024 set is chosen by name only).
    auto_select: bool
    tiers: dict[str, Tier]
    models: dict[str, ModelFacts]
    memory: ProfileMemory
    # The `large-context` route the profile's config has (placed before the route named in
    # `large_context_route_before`, else last), or None: size is left to the context-window rule.
    large_context_route: Route | None = None
    large_context_route_before: NonEmptyStr | None = None
    cloud_models: dict[str, CloudModel] = field(default_factory=dict)
    sources: tuple[NonEmptyStr, ...] = ()


@dataclass(frozen=True)
class Profile:
    spec: ProfileSpec
    path: Path
    tiers_json: dict[str, Any]  # the tiers as written, for rendering a config
    large_context_json: dict[str, Any] | None = None  # the route as written

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def required_gb(self) -> float:
        return self.spec.memory.required_gb

    @property
    def auto_select(self) -> bool:
        return self.spec.auto_select

    def local_tiers(self, base: Mapping[str, Any] | None = None) -> dict[str, Tier]:
        """The tiers whose provider runs on the user's machine (Ollama or an OpenAI-style
        server in the base config)."""
        kinds = _provider_kinds(base or default_config_data())
        return {
            name: tier
            for name, tier in self.spec.tiers.items()
            if kinds.get(tier.provider) in LOCAL_PROVIDER_KINDS
        }

    def largest_local_window(self) -> int:
        return max((t.context_window for t in self.local_tiers().values()), default=0)


def profiles_dir() -> Path:
    return templates_dir() / PROFILES_DIRNAME


def default_config_data() -> dict[str, Any]:
    """The embedded default config as JSON data (what a rendered profile config starts from)."""
    data: dict[str, Any] = json.loads(default_config_path().read_text(encoding="utf-8"))
    return data


def _provider_kinds(base: Mapping[str, Any]) -> dict[str, str]:
    providers = base.get("providers", {})
    return {name: str(entry.get("kind")) for name, entry in providers.items()}


def _validate(data: Any, source: str) -> ProfileSpec:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(ProfileSpec).validate_python(data)
    except ValidationError as exc:
        raise ProfileError(validation_message(exc, source)) from None


def _close(stated: float, computed: float) -> bool:
    return abs(stated - computed) <= _TOLERANCE_GB


def _check(spec: ProfileSpec, source: str, base: Mapping[str, Any]) -> None:
    """The arithmetic and the cross references pydantic cannot express."""

    def fail(where: str, message: str) -> ProfileError:
        return ProfileError(f"{source}: {where} {message}")

    names = list(spec.tiers)
    missing = [tier for tier in REQUIRED_TIERS if tier not in spec.tiers]
    if missing:
        raise fail(
            "tiers",
            f"is missing {', '.join(missing)} (every profile defines all of "
            f"{', '.join(REQUIRED_TIERS)})",
        )
    if names[: len(REQUIRED_TIERS)] != list(REQUIRED_TIERS):
        raise fail(
            "tiers",
            f"expected the order {', '.join(REQUIRED_TIERS)} (the escalation "
            f"order); got {', '.join(names)}",
        )
    kinds = _provider_kinds(base)
    local_models: dict[str, list[str]] = {}
    for name, tier in spec.tiers.items():
        if tier.provider not in kinds:
            raise fail(
                f"tiers.{name}.provider",
                f"unknown provider {tier.provider!r} (known: {', '.join(kinds)})",
            )
        if kinds[tier.provider] in LOCAL_PROVIDER_KINDS:
            local_models.setdefault(tier.model, []).append(name)
        for index, fallback in enumerate(tier.fallbacks):
            stated = spec.cloud_models.get(fallback.model or "")
            if fallback.context_window and stated is None:
                raise fail(
                    f"tiers.{name}.fallbacks[{index}].contextWindow",
                    f"states a window for {fallback.model} but cloudModels gives no source for it",
                )
            if stated and fallback.context_window != stated.context_window:
                raise fail(
                    f"tiers.{name}.fallbacks[{index}].contextWindow",
                    f"expected {stated.context_window} (cloudModels.{fallback.model})",
                )
    for model, tiers in local_models.items():
        if model not in spec.models:
            raise fail(
                "models",
                f"has no entry for {model} (used by tier {', '.join(tiers)}): "
                "every local model needs its figures and their sources",
            )
    for model, facts in spec.models.items():
        where = f"models.{model}"
        if model not in local_models:
            raise fail(where, "is not used by any local tier")
        for tier_name in local_models[model]:
            window = spec.tiers[tier_name].context_window
            if window != facts.window:
                raise fail(
                    f"tiers.{tier_name}.contextWindow",
                    f"is {window} but {where}.window is {facts.window}: tiers that share a "
                    "model share its window (Ollama reloads a model for another num_ctx)",
                )
        if facts.window > facts.max_context_tokens:
            raise fail(
                f"{where}.window",
                f"{facts.window} exceeds the model's maxContextTokens {facts.max_context_tokens}",
            )
        kv = facts.kv_cache
        if kv.bytes_per_token != kv.computed_bytes_per_token():
            raise fail(
                f"{where}.kvCache.bytesPerToken",
                f"says {kv.bytes_per_token} but 2 x {kv.layers} layers x {kv.kv_heads} KV "
                f"heads x {kv.head_dim} head dim x {kv.bytes_per_element} bytes = "
                f"{kv.computed_bytes_per_token()}",
            )
        computed = facts.download_gb + facts.kv_gb() + spec.memory.overhead_gb_per_model
        if not _close(facts.memory_gb, computed):
            raise fail(
                f"{where}.memoryGb",
                f"says {facts.memory_gb} but {facts.download_gb} GB weights + "
                f"{facts.kv_gb():.2f} GB KV cache ({kv.bytes_per_token:,} B/token x "
                f"{facts.window:,}) + {spec.memory.overhead_gb_per_model} GB runtime = "
                f"{computed:.2f}",
            )
    memory = spec.memory
    if sorted(memory.loaded_together) != sorted(local_models):
        raise fail(
            "memory.loadedTogether",
            f"expected the distinct local models of the tiers: {', '.join(local_models)}",
        )
    if len(memory.loaded_together) > OLLAMA_DEFAULT_MAX_LOADED_MODELS:
        raise fail(
            "memory.loadedTogether",
            f"has {len(memory.loaded_together)} models; Ollama keeps at most "
            f"{OLLAMA_DEFAULT_MAX_LOADED_MODELS} loaded by default (OLLAMA_MAX_LOADED_MODELS)",
        )
    total = sum(spec.models[m].memory_gb for m in memory.loaded_together)
    if not _close(memory.required_gb, total):
        raise fail(
            "memory.requiredGb",
            f"says {memory.required_gb} but the models loaded together need {total:.2f}",
        )
    if spec.memory_gb is not None and memory.required_gb > spec.memory_gb:
        raise fail(
            "memory.requiredGb",
            f"{memory.required_gb} GB does not fit the profile's memoryGb {spec.memory_gb}",
        )
    if spec.auto_select and spec.memory_gb is None:
        raise fail("autoSelect", "needs memoryGb (the class detection compares with)")


def load_profile_file(path: Path, base: Mapping[str, Any] | None = None) -> Profile:
    base = base if base is not None else default_config_data()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(
            f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    spec = _validate(data, str(path))
    if spec.name != path.stem:
        raise ProfileError(
            f"{path}: name expected {path.stem!r} (the file's name); got {spec.name!r}"
        )
    _check(spec, str(path), base)
    if spec.large_context_route is not None and spec.large_context_route.name != (
        LARGE_CONTEXT_ROUTE
    ):
        raise ProfileError(f"{path}: largeContextRoute.name expected {LARGE_CONTEXT_ROUTE!r}")
    profile = Profile(
        spec,
        path,
        copy.deepcopy(data["tiers"]),
        copy.deepcopy(data.get("largeContextRoute")),
    )
    # The rendered config must be a valid router config too (fallback providers and so on).
    parse_config(render_config(profile, base), f"{path} (rendered as a router config)")
    return profile


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Every profile in the directory: the selectable ones by size, then the others by name."""
    directory = directory or profiles_dir()
    base = default_config_data()
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise ProfileError(f"{directory}: no profiles found (*.json)")
    loaded = [load_profile_file(path, base) for path in paths]
    loaded.sort(key=lambda p: (not p.auto_select, p.required_gb if p.auto_select else 0, p.name))
    return {profile.name: profile for profile in loaded}


def get_profile(name: str, profiles: Mapping[str, Profile]) -> Profile:
    try:
        return profiles[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r} (known: {', '.join(profiles)})") from None


def selectable(profiles: Mapping[str, Profile]) -> list[Profile]:
    """The profiles detection and `--memory-gb` choose from, smallest need first."""
    return sorted((p for p in profiles.values() if p.auto_select), key=lambda p: p.required_gb)


def largest_fitting(profiles: Mapping[str, Profile], memory_gb: float) -> Profile | None:
    """The selectable profile with the largest need that `memory_gb` holds."""
    fitting = [p for p in selectable(profiles) if p.required_gb <= memory_gb]
    return fitting[-1] if fitting else None


def profile_for_memory(profiles: Mapping[str, Profile], memory_gb: float) -> Profile:
    """`--memory-gb N`: the largest profile that fits, or an error saying none does."""
    chosen = largest_fitting(profiles, memory_gb)
    if chosen is None:
        smallest = selectable(profiles)[0]
        raise ProfileError(
            f"{memory_gb:g} GB holds no profile: the smallest, {smallest.name}, needs "
            f"{smallest.required_gb:.1f} GB (`hybrid-router profiles` lists them)"
        )
    return chosen


def render_config(profile: Profile, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full router config for a profile: the default (or `base`) with the profile's tiers,
    its name recorded first, and the profile's `large-context` route or none. The same profile
    renders the same config whichever profile the default itself was made from."""
    source = copy.deepcopy(dict(base if base is not None else default_config_data()))
    source.pop("profile", None)
    rendered: dict[str, Any] = {"profile": profile.name, **source}
    rendered["tiers"] = copy.deepcopy(profile.tiers_json)
    routes = [r for r in rendered.get("routes", []) if r.get("name") != LARGE_CONTEXT_ROUTE]
    if profile.large_context_json is not None:
        names = [r.get("name") for r in routes]
        before = profile.spec.large_context_route_before
        at = names.index(before) if before in names else len(routes)
        routes.insert(at, copy.deepcopy(profile.large_context_json))
    rendered["routes"] = routes
    return rendered


# --- writing JSON the way the shipped files are written ------------------------------------------

_WIDTH = 100


def format_json(value: Any) -> str:
    """JSON as the shipped settings are written: objects one key per line, short objects and
    lists of plain values inline, long lists wrapped to the line width."""
    return _format(value, 0) + "\n"


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _format(value: Any, indent: int) -> str:
    pad = "  " * indent
    inner = pad + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        inline = "{" + ", ".join(f"{json.dumps(k)}: {_inline(v)}" for k, v in value.items()) + "}"
        if all(_scalar(v) or _small(v) for v in value.values()) and len(pad) + len(inline) < 80:
            return inline
        items = [f"{inner}{json.dumps(k)}: {_format(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(_scalar(v) for v in value):
            inline = "[" + ", ".join(json.dumps(v) for v in value) + "]"
            if len(inner) + len(inline) <= _WIDTH - 20:
                return inline
            lines: list[str] = []
            line = ""
            for item in (json.dumps(v) for v in value):
                candidate = f"{line}, {item}" if line else item
                if line and len(inner) + len(candidate) + 1 > _WIDTH:
                    lines.append(line + ",")
                    line = item
                else:
                    line = candidate
            lines.append(line)
            return "[\n" + "\n".join(inner + part for part in lines) + f"\n{pad}]"
        if all(_small(v) for v in value):
            inline = "[" + ", ".join(_inline(v) for v in value) + "]"
            if len(inner) + len(inline) <= _WIDTH - 10:
                return inline
            items = [inner + _inline(v) for v in value]
        else:
            items = [inner + _format(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value)


def _small(value: Any) -> bool:
    return isinstance(value, dict) and all(_scalar(v) for v in value.values()) and len(value) <= 4


def _inline(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))
