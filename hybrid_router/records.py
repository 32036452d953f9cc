"""Turning a routing decision (and, when something was called, its usage) into a log row."""

from __future__ import annotations

from .config import RouterConfig
from .pricing import Usage, baseline_cost, request_cost
from .routing import Decision
from .signals import Signals
from .store import OUTCOME_ROUTED, DecisionRow, prompt_fields


def decision_row(
    decision: Decision,
    signals: Signals,
    config: RouterConfig,
    *,
    source: str,
    outcome: str = OUTCOME_ROUTED,
    usage: Usage | None = None,
    prompt_id: str | None = None,
) -> DecisionRow:
    """A row for `decision`; cost and baseline cost are priced from `usage` when there is one."""
    usage = usage or Usage()
    row = DecisionRow(
        source=source,
        rule=decision.rule,
        provider=decision.provider,
        model=decision.model,
        outcome=outcome,
        session_id=signals.session_id,
        prompt_id=prompt_id,
        requested_model=signals.requested_model,
        tier=decision.tier,
        complexity=decision.complexity,
        estimated_tokens=decision.estimated_tokens,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cost=request_cost(decision.provider, decision.model, usage, config),
        baseline_cost=baseline_cost(signals.requested_model, usage, config),
        reason=decision.reason,
    )
    if signals.text:
        for name, value in prompt_fields(signals.text, config.store_prompts).items():
            setattr(row, name, value)
    return row
