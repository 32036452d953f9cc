"""The chain of upstreams for one request: the routed model, its fallbacks, the last resort —
minus the links that cannot take this request (missing key, too small a window, no tool calls,
an exhausted free tier, server tools a non-Anthropic model cannot run)."""

from __future__ import annotations

from ..config.schema import RouterConfig
from ..core.routing import Decision, model_for
from ..core.signals import Signals
from ..core.table import RoutingTable
from ..providers.link import Link, make_link


def _window(table: RoutingTable, provider: str, model: str) -> int | None:
    """The window the config gives a model: a tier's, else one a fallback states (free cloud
    models state theirs)."""
    for _, target in table.tiers:
        if target.provider == provider and target.model == model:
            return target.context_window
    for _, target in table.tiers:
        for ref in target.fallbacks:
            if ref.provider == provider and ref.model == model and ref.context_window:
                return ref.context_window
    return None


def _decision_window(decision: Decision, table: RoutingTable) -> int | None:
    """The routed model's window: its tier's when the tier's model was routed to (Anthropic may
    run the client's own model), else the window the config states for that model (a tier's
    free cloud fallback chosen on size)."""
    if decision.tier:
        tier = table.tier(decision.tier)
        if tier.provider == decision.provider:
            return tier.context_window
    return _window(table, decision.provider, decision.model)


def candidate_links(
    decision: Decision,
    config: RouterConfig,
    table: RoutingTable,
    environ: dict[str, str],
    requested_model: str | None = None,
) -> list[Link]:
    """The routed model, then its fallbacks, then the configured last resort; no repeats.

    Any link to Anthropic uses the client's own Claude model when it named one.
    """
    wanted: list[tuple[str, str, int | None]] = []
    wanted.append((decision.provider, decision.model, _decision_window(decision, table)))
    for ref in decision.fallbacks:
        wanted.append((ref.provider, ref.model, _window(table, ref.provider, ref.model)))
    last = config.proxy.last_resort
    if last is not None:
        if last.tier is not None:
            tier = config.tiers[last.tier]
            wanted.append((tier.provider, tier.model, tier.context_window))
        elif last.provider and last.model:
            wanted.append((last.provider, last.model, last.context_window))
    links: list[Link] = []
    seen: set[tuple[str, str]] = set()
    for name, model, window in wanted:
        provider = config.providers.get(name)
        if provider is None:
            continue
        model = model_for(provider.kind, model, requested_model)
        if (name, model) in seen:
            continue
        seen.add((name, model))
        link = make_link(config, name, model, environ, window)
        if link is not None:
            links.append(link)
    return links


def skip_reason(
    link: Link,
    signals: Signals,
    *,
    output_reserve: int,
    has_tools: bool,
    tool_capable: bool | None,
    exhausted: str | None,
    client_has_auth: bool,
) -> str | None:
    """Why `link` cannot take this request, or None."""
    if signals.server_tools and not link.is_anthropic:
        return "server tools run only on Anthropic"
    if (
        link.provider.api_key_env
        and not link.api_key
        and not (link.is_anthropic and client_has_auth)
    ):
        return f"{link.provider.api_key_env} is not set"
    reserve = min(output_reserve, signals.max_tokens or output_reserve)
    if link.window is not None and signals.estimated_tokens + reserve > link.window:
        # Ollama would not refuse: it would silently drop the oldest messages.
        return f"~{signals.estimated_tokens:,} tokens do not fit its {link.window:,}-token window"
    if has_tools and tool_capable is False and not link.is_anthropic:
        return "it failed the tool-call probe (hybrid-router doctor)"
    if exhausted:
        return exhausted
    return None
