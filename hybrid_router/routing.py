"""decide(signals, config) -> Decision: pure, fast, and the same for every surface.

Order of evaluation:
1. Hard rules about the request itself: server web tools (only Anthropic runs them) go to the
   web-tools target; Claude Code's background requests (a haiku-class model, or structured output
   with no tools, as its title generation sends) go to the background target (the fast tier).
2. The configured routes, in file order; the first whose conditions all hold wins.
3. The default route.
Then the context-window hard rule: when the estimate (plus room for the answer) does not fit the
chosen model's window, the request moves to the next tier in the configured order that fits.
A request that names its own Claude model keeps that model whenever it goes to Anthropic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .complexity import assess_complexity
from .config import Route, RouterConfig, Target
from .keywords import compile_patterns, compile_terms, overlaps
from .signals import Signals

RULE_WEB_TOOLS = "web-tools"
RULE_BACKGROUND = "background"
RULE_CONTEXT_WINDOW = "context-window"


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: str
    model: str

    def to_dict(self) -> dict[str, str]:
        return {"provider": self.provider, "model": self.model}


@dataclass(frozen=True, slots=True)
class Decision:
    provider: str
    model: str
    rule: str
    reason: str
    complexity: str
    estimated_tokens: int
    tier: str | None = None
    matched: tuple[str, ...] = ()
    fallbacks: tuple[ModelRef, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "rule": self.rule,
            "reason": self.reason,
            "complexity": self.complexity,
            "estimated_tokens": self.estimated_tokens,
            "tier": self.tier,
            "matched": list(self.matched),
            "fallbacks": [ref.to_dict() for ref in self.fallbacks],
        }


@dataclass(frozen=True, slots=True)
class _Resolved:
    provider: str
    model: str
    tier: str | None
    context_window: int | None
    fallbacks: tuple[ModelRef, ...]


def _resolve(target: Target, config: RouterConfig) -> _Resolved:
    if target.tier is not None:
        return _resolve_tier(target.tier, config)
    assert target.provider is not None and target.model is not None  # checked at load time
    for name, tier in config.tiers.items():
        if tier.provider == target.provider and tier.model == target.model:
            resolved = _resolve_tier(name, config)
            if target.context_window:
                return _Resolved(
                    resolved.provider,
                    resolved.model,
                    name,
                    target.context_window,
                    resolved.fallbacks,
                )
            return resolved
    return _Resolved(target.provider, target.model, None, target.context_window, ())


def _resolve_tier(name: str, config: RouterConfig) -> _Resolved:
    tier = config.tiers[name]
    fallbacks = tuple(_fallback_ref(fallback, config) for fallback in tier.fallbacks)
    return _Resolved(tier.provider, tier.model, name, tier.context_window, fallbacks)


def tier_fallbacks(name: str, config: RouterConfig) -> tuple[ModelRef, ...]:
    """The fallback chain configured for a tier."""
    return _resolve_tier(name, config).fallbacks


def _fallback_ref(target: Target, config: RouterConfig) -> ModelRef:
    if target.tier is not None:
        tier = config.tiers[target.tier]
        return ModelRef(tier.provider, tier.model)
    assert target.provider is not None and target.model is not None
    return ModelRef(target.provider, target.model)


def is_background(signals: Signals, config: RouterConfig) -> bool:
    model = (signals.requested_model or "").lower()
    if model and any(pattern.lower() in model for pattern in config.background.model_patterns):
        return True
    return signals.is_structured_without_tools


def route_evidence(
    route: Route, signals: Signals, lowered_text: str, complexity: str
) -> list[str] | None:
    """What makes `route` apply to this request (keywords, patterns, sizes), or None if it does not."""
    conditions = route.conditions
    evidence: list[str] = []
    if conditions.keywords or conditions.patterns:
        matcher = compile_terms(conditions.keywords, conditions.exclude)
        excluded = matcher.excluded_spans(lowered_text)
        hits = matcher.hits(lowered_text, excluded)
        for pattern in compile_patterns(conditions.patterns):
            # Exclusions apply to pattern matches too ("git fetch https://..." is not browsing).
            match = next(
                (m for m in pattern.finditer(lowered_text) if not overlaps(m.span(), excluded)),
                None,
            )
            if match:
                hits.append(" ".join(match.group(0).split())[:60])
        if not hits:
            return None
        evidence.extend(hits)
    if conditions.complexity and complexity not in conditions.complexity:
        return None
    tokens = signals.estimated_tokens
    if conditions.min_context_tokens is not None:
        if tokens < conditions.min_context_tokens:
            return None
        evidence.append(f"~{tokens:,} tokens >= {conditions.min_context_tokens:,}")
    if conditions.max_context_tokens is not None and tokens > conditions.max_context_tokens:
        return None
    return evidence


def _quote(terms: list[str]) -> str:
    return ", ".join(f'"{term}"' for term in terms[:5]) + (" ..." if len(terms) > 5 else "")


def _choose(
    signals: Signals, config: RouterConfig, complexity: str
) -> tuple[_Resolved, str, str, tuple[str, ...]]:
    if signals.server_tools:
        kinds = ", ".join(sorted(set(signals.server_tools)))
        reason = f"the request offers server tools ({kinds}), which only Anthropic runs"
        return _resolve(config.web_tools_target, config), RULE_WEB_TOOLS, reason, ()
    if is_background(signals, config):
        what = (
            f"model {signals.requested_model}"
            if signals.requested_model and not signals.is_structured_without_tools
            else "structured output with no tools, as in title generation"
        )
        reason = f"Claude Code background request ({what})"
        return _resolve(config.background.target, config), RULE_BACKGROUND, reason, ()
    lowered = signals.text.lower()
    for route in config.routes:
        evidence = route_evidence(route, signals, lowered, complexity)
        if evidence is not None:
            reason = f"{route.name}: matched {_quote(evidence)}" if evidence else route.name
            return _resolve(route.target, config), route.name, reason, tuple(evidence)
    default = config.default_route
    return _resolve(default.target, config), default.name, "no route matched", ()


def _fits(tokens: int, reserve: int, window: int | None) -> bool:
    return window is None or tokens + reserve <= window


def _escalate(
    chosen: _Resolved, tokens: int, reserve: int, config: RouterConfig
) -> _Resolved | None:
    """The next tier in configured order whose window fits; the largest window when none does."""
    names = list(config.tiers)
    start = names.index(chosen.tier) + 1 if chosen.tier in config.tiers else 0
    for name in names[start:]:
        if _fits(tokens, reserve, config.tiers[name].context_window):
            return _resolve_tier(name, config)
    largest = max(names, key=lambda name: config.tiers[name].context_window)
    if (
        chosen.context_window is not None
        and config.tiers[largest].context_window <= chosen.context_window
    ):
        return None
    return _resolve_tier(largest, config)


def decide(signals: Signals, config: RouterConfig) -> Decision:
    complexity = assess_complexity(signals.text)
    chosen, rule, reason, matched = _choose(signals, config, complexity)
    tokens = signals.estimated_tokens
    reserve = min(config.output_reserve_tokens, signals.max_tokens or config.output_reserve_tokens)
    if not _fits(tokens, reserve, chosen.context_window):
        bigger = _escalate(chosen, tokens, reserve, config)
        if bigger is not None:
            reason = (
                f"~{tokens:,} tokens (+{reserve:,} for the answer) exceed the "
                f"{chosen.context_window:,}-token window of {chosen.model}; moved up to "
                f"{bigger.tier} (was {reason})"
            )
            rule = RULE_CONTEXT_WINDOW
            chosen = bigger
    model = chosen.model
    requested = signals.requested_model
    provider = config.providers.get(chosen.provider)
    if (
        provider is not None
        and provider.kind == "anthropic"
        and requested
        and requested.startswith("claude")
    ):
        model = requested  # the client's own Claude model is kept when Anthropic answers
    return Decision(
        provider=chosen.provider,
        model=model,
        rule=rule,
        reason=reason,
        complexity=complexity,
        estimated_tokens=tokens,
        tier=chosen.tier,
        matched=matched,
        fallbacks=chosen.fallbacks,
    )
