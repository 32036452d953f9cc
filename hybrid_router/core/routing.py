"""decide(signals, table) -> Decision: pure, fast, and the same for every surface.

Order of evaluation:
1. Hard rules about the request itself: server web tools (only Anthropic runs them) go to the
   web-tools target; Claude Code's background requests (a haiku-class model, or structured output
   with no tools, as its title generation sends) go to the background target (the fast tier).
2. The configured routes, in file order; the first whose conditions all hold wins.
3. The default route.
Then the context-window hard rule: when the estimate (plus room for the answer) does not fit the
chosen model's window, the request moves to the next tier in the configured order that fits.
A request that names its own Claude model keeps that model whenever it goes to Anthropic.

`decide` works on a `RoutingTable` (core/table.py): the config's routing part compiled into
plain data (config/compile.py builds it). Plain data so that the prompt hook, a fresh process per
prompt, can load it from a `marshal` cache without importing the config schema or pydantic.
"""

from __future__ import annotations

from .complexity import assess_complexity
from .matching import Span, overlaps, token_offsets, tokenize
from .patterns import matches
from .records import Record
from .signals import Signals
from .table import (
    FREE_MODEL_SUFFIX,
    LOCAL_PROVIDER_KINDS,
    ModelRef,
    RouteSpec,
    RoutingTable,
    Target,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the prompt hook more than it can afford
    from collections.abc import Callable
    from typing import Any

RULE_WEB_TOOLS = "web-tools"
# A huge prompt is routed on its head and its tail — people give the context first and the ask
# last — so routing costs the same past this size, and one request cannot hold up the others;
# the size estimate (signals) still counts every character.
ROUTED_HEAD_CHARS = 8_000
ROUTED_TAIL_CHARS = 8_000
RULE_BACKGROUND = "background"
RULE_CONTEXT_WINDOW = "context-window"


class Decision(Record, frozen=True):
    """Where a request goes, and why: the target, the rule that chose it, its evidence."""

    provider: str
    model: str
    rule: str
    reason: str
    complexity: str
    estimated_tokens: int
    tier: str | None = None
    matched: tuple[str, ...] = ()
    fallbacks: tuple[ModelRef, ...] = ()

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


def is_background(signals: Signals, table: RoutingTable) -> bool:
    model = (signals.requested_model or "").lower()
    if model and any(pattern in model for pattern in table.background_patterns):
        return True
    return signals.is_structured_without_tools


def route_evidence(
    route: RouteSpec,
    signals: Signals,
    tokens: list[str],
    complexity: str,
    text_evidence: list[str] | None | object = None,
) -> list[str] | None:
    """What makes `route` apply to this request (keywords, patterns, sizes), or None if it does not.

    `text_evidence`: the route's keyword and pattern evidence for this text when the caller has
    it (`PromptAnalysis.evidence`); worked out here otherwise."""
    if text_evidence is None:
        text_evidence = keyword_evidence(route, signals.text, tokens)
    if text_evidence is NO_MATCH:
        return None
    evidence: list[str] = list(text_evidence)  # type: ignore[call-overload]
    if route.complexity and complexity not in route.complexity:
        return None
    estimate = signals.estimated_tokens
    if route.min_tokens is not None:
        if estimate < route.min_tokens:
            return None
        evidence.append(f"~{estimate:,} tokens >= {route.min_tokens:,}")
    if route.max_tokens is not None and estimate > route.max_tokens:
        return None
    return evidence


NO_MATCH = object()  # a route's keywords or patterns do not match the text


def keyword_evidence(route: RouteSpec, text: str, tokens: list[str]) -> list[str] | object:
    """The words and patterns of `text` that match `route` (empty if the route has none), or
    NO_MATCH when it has some and none matches."""
    if route.matcher.empty and not route.patterns:
        return []
    if not route.patterns and not route.matcher.could_match(tokens):
        return NO_MATCH
    excluded = route.matcher.excluded(tokens)
    hits = route.matcher.hits(tokens, excluded)
    if not hits and route.patterns:
        hits = _pattern_hits(route, text, tokens, excluded)
    return hits or NO_MATCH


def routed_part(text: str) -> str:
    """What routing reads of a prompt: all of it, or its head and tail when it is huge."""
    if len(text) <= ROUTED_HEAD_CHARS + ROUTED_TAIL_CHARS:
        return text
    return text[:ROUTED_HEAD_CHARS] + "\n" + text[-ROUTED_TAIL_CHARS:]


class PromptAnalysis:
    """What routing reads from a prompt's text alone (its routed part): its tokens, complexity
    and each route's keyword evidence (worked out when first asked for)."""

    __slots__ = ("_evidence", "complexity", "text", "tokens")

    def __init__(self, text: str, route_count: int) -> None:
        self.text = text
        self.tokens = tokenize(text)  # shared by the complexity estimate and the routes
        self.complexity = assess_complexity(text, self.tokens)
        self._evidence: list[object] = [None] * route_count

    def evidence(self, index: int, route: RouteSpec) -> list[str] | object:
        found = self._evidence[index]
        if found is None:
            found = self._evidence[index] = keyword_evidence(route, self.text, self.tokens)
        return found


class _PromptAnalyses:
    """Analyses of recent prompts, for one routing table. Claude Code sends a turn's prompt
    again with every tool result, so most requests of a turn route on a text already read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.table: RoutingTable | None = None
        self.entries: dict[str, PromptAnalysis] = {}

    def get(self, text: str, table: RoutingTable) -> PromptAnalysis:
        if table is not self.table:
            self.table, self.entries = table, {}
        text = routed_part(text)  # also the key: hashing a huge prompt would cost its size
        found = self.entries.get(text)
        if found is None:
            if len(self.entries) >= self.size:
                self.entries.clear()
            found = self.entries[text] = PromptAnalysis(text, len(table.routes))
        return found


_analyses = _PromptAnalyses(size=256)


def _pattern_hits(
    route: RouteSpec, text: str, tokens: list[str], excluded: list[Span]
) -> list[str]:
    """Pattern matches outside exclusions ("git fetch https://..." is not browsing)."""
    lowered = text.lower()
    excluded_chars: list[tuple[int, int]] = []
    if excluded:
        starts, ends = token_offsets(lowered)
        excluded_chars = [(starts[first], ends[last - 1]) for first, last in excluded]
    for source in route.patterns:
        for span, matched in matches(source, lowered):  # time-limited (core/patterns.py)
            if not overlaps(span, excluded_chars):
                return [" ".join(matched.split())[:60]]
    return []


def _quote(terms: list[str]) -> str:
    return ", ".join(f'"{term}"' for term in terms[:5]) + (" ..." if len(terms) > 5 else "")


def _choose(
    signals: Signals,
    table: RoutingTable,
    analysis: PromptAnalysis,
    intent: IntentSignal | None = None,
) -> tuple[Target, str, str, tuple[str, ...]]:
    if signals.server_tools:
        kinds = ", ".join(sorted(set(signals.server_tools)))
        reason = f"the request offers server tools ({kinds}), which only Anthropic runs"
        return table.web_tools_target, RULE_WEB_TOOLS, reason, ()
    if is_background(signals, table):
        what = (
            f"model {signals.requested_model}"
            if signals.requested_model and not signals.is_structured_without_tools
            else "structured output with no tools, as in title generation"
        )
        return (
            table.background_target,
            RULE_BACKGROUND,
            f"Claude Code background request ({what})",
            (),
        )
    chosen = _keyword_choice(signals, table, analysis)
    vote = intent(analysis.text) if intent is not None and analysis.text else None
    voted = _route_named(table, vote.route) if vote is not None else None
    if vote is None or voted is None:
        return chosen  # no signal, or a vote for a route this config does not have
    intent_says = f"{vote.source} intent, confidence {vote.confidence:.2f}"
    if voted.name == chosen[1]:  # both agree: keep the words' evidence
        return chosen[0], chosen[1], f"{chosen[2]}; {intent_says}", chosen[3]
    by_vote = (voted.target, voted.name, f"{voted.name}: {intent_says}", ())
    if vote.decisive:
        # Confident: the vote decides, in either direction. It sends premium work the words
        # missed to Anthropic, clears a keyword near-miss, and picks among local routes.
        return by_vote
    unsure = f"{intent_says}, under its threshold"
    # Unsure: a premium route named by either signal wins (a premium miss costs more than a
    # paid turn that could have run free), the keywords' first; then a local route the
    # keywords matched; then the vote, which beats the bare default route.
    if _is_paid(chosen[0], table):
        return chosen[0], chosen[1], f"{chosen[2]}; {unsure}", chosen[3]
    if _is_paid(voted.target, table):
        return voted.target, voted.name, f"{voted.name}: {unsure}", ()
    if chosen[1] != table.default_route.name:
        return chosen[0], chosen[1], f"{chosen[2]}; {unsure}", chosen[3]
    return by_vote


def _is_paid(target: Target, table: RoutingTable) -> bool:
    """A target on a paid provider (the premium tier), not a local or free model."""
    kind = table.provider_kinds.get(target.provider)
    return kind not in LOCAL_PROVIDER_KINDS and not target.model.endswith(FREE_MODEL_SUFFIX)


def _keyword_choice(
    signals: Signals, table: RoutingTable, analysis: PromptAnalysis
) -> tuple[Target, str, str, tuple[str, ...]]:
    """The first route whose conditions hold, else the default route."""
    for index, route in enumerate(table.routes):
        evidence = route_evidence(
            route, signals, analysis.tokens, analysis.complexity, analysis.evidence(index, route)
        )
        if evidence is not None:
            reason = f"{route.name}: matched {_quote(evidence)}" if evidence else route.name
            return route.target, route.name, reason, tuple(evidence)
    default = table.default_route
    return default.target, default.name, "no route matched", ()


def _route_named(table: RoutingTable, name: str) -> RouteSpec | None:
    if name == table.default_route.name:
        return table.default_route
    for route in table.routes:
        if route.name == name:
            return route
    return None  # a vote for a route this config does not have: the keywords decide


def _free_cloud(
    chosen: Target, bigger: Target | None, tokens: int, reserve: int, table: RoutingTable
) -> Target | None:
    """Before a local request moves up to a paid tier on size: the first free cloud fallback,
    tier by tier up the order from the chosen one, whose stated window fits (or None)."""
    kinds = table.provider_kinds
    if (
        not table.free_cloud_on_size
        or bigger is None
        or kinds.get(chosen.provider) not in LOCAL_PROVIDER_KINDS
        or kinds.get(bigger.provider) in LOCAL_PROVIDER_KINDS
        or bigger.model.endswith(FREE_MODEL_SUFFIX)
    ):
        return None
    names = [name for name, _ in table.tiers]
    start = names.index(chosen.tier) if chosen.tier in names else 0
    for name, target in table.tiers[start:]:
        for ref in target.fallbacks:
            if (
                kinds.get(ref.provider) == "openrouter"
                and ref.model.endswith(FREE_MODEL_SUFFIX)
                and ref.context_window is not None
                and _fits(tokens, reserve, ref.context_window)
            ):
                return Target(ref.provider, ref.model, name, ref.context_window, ())
    return None


def _fits(tokens: int, reserve: int, window: int | None) -> bool:
    return window is None or tokens + reserve <= window


def _escalate(chosen: Target, tokens: int, reserve: int, table: RoutingTable) -> Target | None:
    """The next tier in configured order whose window fits; the largest window when none does."""
    names = [name for name, _ in table.tiers]
    start = names.index(chosen.tier) + 1 if chosen.tier in names else 0
    for _, target in table.tiers[start:]:
        if _fits(tokens, reserve, target.context_window):
            return target
    # Tiers always have a window (the config requires one); 0 only satisfies the type checker.
    largest = max(
        (target for _, target in table.tiers), key=lambda target: target.context_window or 0
    )
    if chosen.context_window is not None and (largest.context_window or 0) <= chosen.context_window:
        return None
    return largest


def model_for(provider_kind: str | None, model: str, requested_model: str | None) -> str:
    """The model a request runs on at a provider of `provider_kind`: the configured `model`,
    except that the client's own Claude model is kept whenever Anthropic answers (a client that
    asked for Opus is not quietly moved to Sonnet). The one place this rule is written."""
    if provider_kind == "anthropic" and requested_model and requested_model.startswith("claude"):
        return requested_model
    return model


class IntentVote(Record, frozen=True):
    """What a second routing signal (one that reads intent, not words) says about a prompt."""

    route: str  # the name of a route of the table, or of its default route
    confidence: float  # 0..1, as the signal measures it
    source: str  # which signal, for the reason and `route --explain`
    # Whether the confidence reaches the signal's threshold: a decisive vote decides the route;
    # an unsure one only breaks ties (see _choose).
    decisive: bool = True


if TYPE_CHECKING:
    # A second signal plugs in from outside the core (the core stays stdlib-only): it reads the
    # prompt's text and votes (decisive or unsure), or abstains (None) when it has no say.
    IntentSignal = Callable[[str], IntentVote | None]


def decide(signals: Signals, table: RoutingTable, intent: IntentSignal | None = None) -> Decision:
    """Where the request goes. Hard rules first; then, with `intent`, a decisive vote decides
    the route (in either direction: it sends a prompt with no keyword to a premium route, clears
    a keyword near-miss, picks among local routes); an unsure vote lets a premium route named by
    either signal win, then the keyword routes, then itself over the default route; without a
    vote the keyword routes decide. The context-window rule applies after."""
    analysis = _analyses.get(signals.text, table)
    chosen, rule, reason, matched = _choose(signals, table, analysis, intent)
    return _finish(signals, table, chosen, rule, reason, matched, analysis.complexity)


# Rules a turn pin cannot override: they are about the request itself, not the prompt.
HARD_RULES = (RULE_WEB_TOOLS, RULE_BACKGROUND, RULE_CONTEXT_WINDOW)


def decide_with_pin(
    signals: Signals,
    table: RoutingTable,
    target: Target,
    rule: str,
    reason: str,
    intent: IntentSignal | None = None,
) -> Decision:
    """The decision for a request of a turn the prompt hook pinned to `target`.

    The pin wins over the routes (a tool-result continuation has no prompt words to route on),
    but not over the hard rules; and the context-window check still applies to the pinned model.
    """
    decision = decide(signals, table, intent)
    if decision.rule in HARD_RULES:
        return decision
    return _finish(signals, table, target, rule, reason, (), decision.complexity)


def _finish(
    signals: Signals,
    table: RoutingTable,
    chosen: Target,
    rule: str,
    reason: str,
    matched: tuple[str, ...],
    complexity: str,
) -> Decision:
    """Apply the context-window rule and the client's own Claude model to a chosen target."""
    tokens = signals.estimated_tokens
    reserve = min(table.output_reserve_tokens, signals.max_tokens or table.output_reserve_tokens)
    if not _fits(tokens, reserve, chosen.context_window):
        bigger = _escalate(chosen, tokens, reserve, table)
        free = _free_cloud(chosen, bigger, tokens, reserve, table)
        if free is not None:
            reason = (
                f"~{tokens:,} tokens (+{reserve:,} for the answer) exceed the "
                f"{chosen.context_window:,}-token window of {chosen.model}; moved to the free "
                f"cloud model {free.model} ({free.context_window:,} tokens) before the "
                f"{bigger.tier if bigger else 'premium'} tier (was {reason})"
            )
            rule = RULE_CONTEXT_WINDOW
            chosen = free
        elif bigger is not None:
            reason = (
                f"~{tokens:,} tokens (+{reserve:,} for the answer) exceed the "
                f"{chosen.context_window:,}-token window of {chosen.model}; moved up to "
                f"{bigger.tier} (was {reason})"
            )
            rule = RULE_CONTEXT_WINDOW
            chosen = bigger
    return Decision(
        provider=chosen.provider,
        model=model_for(
            table.provider_kinds.get(chosen.provider), chosen.model, signals.requested_model
        ),
        rule=rule,
        reason=reason,
        complexity=complexity,
        estimated_tokens=tokens,
        tier=chosen.tier,
        matched=matched,
        fallbacks=chosen.fallbacks,
    )
