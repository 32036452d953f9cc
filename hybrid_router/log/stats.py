"""Aggregates over the decision log: per provider, cost, cost without the router, savings.

Whole days come from the per-day totals the log keeps with triggers; only the partial days at the
ends of a period are read row by row, so a million rows stay fast.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.outcomes import (
    ERROR_CONTEXT_TRUNCATED,
    OUTCOME_DECLINED,
    OUTCOME_ERROR,
    OUTCOME_FALLBACK,
    OUTCOME_REJECTED,
    OUTCOME_ROUTED,
)
from .periods import period_rows

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class PeriodError(ValueError):
    pass


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """`30m`, `24h`, `7d`, `2w`, `today`, `all`, or an ISO date/time -> a Unix time (None = all)."""
    if value is None or value.strip().lower() in ("", "all"):
        return None
    now = time.time() if now is None else now
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now - float(relative.group(1)) * _UNIT_SECONDS[relative.group(2).lower()]
    if text.lower() == "today":
        local = datetime.fromtimestamp(now).astimezone()
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(
            f"invalid period {value!r}: expected e.g. 30m, 24h, 7d, 2w, today, all, "
            "or an ISO date such as 2026-11-01"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a bare date or time is the user's local time
    return parsed.timestamp()


@dataclass
class ProviderStats:
    provider: str
    requests: int
    share: float
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost: float
    baseline_cost: float

    @property
    def savings(self) -> float:
        return self.baseline_cost - self.cost


@dataclass
class ModelChecks:
    """One model's checked answers in proxy mode (proxy/checks.py): how many failed a check,
    per check, and (when counted) how many passed and reached the client. A request whose
    answers failed on several links counts once, for the first (the row records that one)."""

    provider: str
    model: str
    failed: int = 0
    checks: dict[str, int] = field(default_factory=dict)  # check -> failures
    passed: int | None = None  # None: not counted (`stats` reads only the few failed rows)

    @property
    def checked(self) -> int | None:
        return None if self.passed is None else self.passed + self.failed

    @property
    def failure_rate(self) -> float | None:
        checked = self.checked
        return None if not checked else self.failed / checked

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "failed": self.failed,
            "checks": dict(sorted(self.checks.items(), key=lambda item: (-item[1], item[0]))),
        }
        if self.passed is not None:
            rate = self.failure_rate
            data.update(checked=self.checked, failure_rate=None if rate is None else round(rate, 4))
        return data


@dataclass
class Stats:
    since: float | None
    until: float
    source: str | None
    session: str | None = None
    decisions: int = 0  # every row
    requests: int = 0  # rows where a model was called (or a call failed)
    classified: dict[str, int] = field(default_factory=dict)  # decision-only rows, per provider
    rejected: int = 0  # proxy requests refused before routing (malformed, too large, no token)
    cost: float = 0.0
    baseline_cost: float = 0.0
    fallbacks: int = 0
    errors: int = 0
    # Requests a local server answered after dropping part of the prompt (error class
    # context-truncated): the answer came from less than the conversation.
    context_truncated: int = 0
    # Per model, answers that failed a check (the next link's answer replaced them); only
    # models with a failure in the period.
    checked_failures: list[ModelChecks] = field(default_factory=list)
    providers: list[ProviderStats] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def savings(self) -> float:
        return self.baseline_cost - self.cost

    @property
    def savings_percent(self) -> float:
        return 100.0 * self.savings / self.baseline_cost if self.baseline_cost > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "source": self.source,
            "session": self.session,
            "decisions": self.decisions,
            "requests": self.requests,
            "classified": {
                "total": sum(self.classified.values()),
                "providers": dict(self.classified),
            },
            "rejected": self.rejected,
            "cost": round(self.cost, 6),
            "baseline_cost": round(self.baseline_cost, 6),
            "savings": round(self.savings, 6),
            "savings_percent": round(self.savings_percent, 2),
            "fallbacks": self.fallbacks,
            "errors": self.errors,
            "context_truncated": self.context_truncated,
            "checked_failures": [entry.to_dict() for entry in self.checked_failures],
            "outcomes": dict(self.outcomes),
            "providers": [
                {
                    "provider": p.provider,
                    "requests": p.requests,
                    "share": round(p.share, 4),
                    "input_tokens": p.input_tokens,
                    "output_tokens": p.output_tokens,
                    "cache_read_tokens": p.cache_read_tokens,
                    "cache_write_tokens": p.cache_write_tokens,
                    "cost": round(p.cost, 6),
                    "baseline_cost": round(p.baseline_cost, 6),
                    "savings": round(p.savings, 6),
                }
                for p in self.providers
            ],
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


_RAW_AGGREGATE = """
    SELECT provider, outcome, COUNT(*),
           TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cache_read_tokens),
           TOTAL(cache_write_tokens), TOTAL(cost), TOTAL(baseline_cost), COUNT(fallback_from)
    FROM decisions WHERE ts >= ? AND ts <= ? {filters}
    GROUP BY provider, outcome
"""
_TOTALS_AGGREGATE = """
    SELECT provider, outcome, SUM(requests),
           SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),
           SUM(cache_write_tokens), SUM(cost), SUM(baseline_cost), SUM(fallbacks)
    FROM decision_totals WHERE day >= ? AND day < ? {filters}
    GROUP BY provider, outcome
"""


def _aggregate_rows(
    conn: sqlite3.Connection,
    since: float | None,
    until: float,
    source: str | None,
    session: str | None,
) -> list[tuple[Any, ...]]:
    """Grouped sums for [since, until]: whole UTC days from the daily totals, the rest raw.

    The raw reads are index ranges over at most the partial first and last day, so the cost
    does not grow with the size of the log. One session's rows are few and indexed by session,
    and the daily totals do not keep sessions: those are always read raw.
    """
    source_clause = "AND source = ?" if source is not None else ""
    source_params = [source] if source is not None else []
    if session is not None:
        raw = _RAW_AGGREGATE.format(filters=f"AND session_id = ? {source_clause}")
        low = since if since is not None else float("-inf")
        return conn.execute(raw, [low, until, session, *source_params]).fetchall()
    return period_rows(
        conn,
        since,
        until,
        _TOTALS_AGGREGATE.format(filters=source_clause),
        _RAW_AGGREGATE.format(filters=source_clause),
        source_params,
    )


def compute_stats(
    conn: sqlite3.Connection,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
    session: str | None = None,
) -> Stats:
    until = time.time() if until is None else until
    result = Stats(since=since, until=until, source=source, session=session)
    by_provider: dict[str, ProviderStats] = {}
    for (
        provider,
        outcome,
        count,
        tin,
        tout,
        tcr,
        tcw,
        cost,
        baseline,
        fallback_rows,
    ) in _aggregate_rows(conn, since, until, source, session):
        if not count:
            continue
        result.decisions += count
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + count
        if outcome == OUTCOME_REJECTED:
            result.rejected += count  # refused before routing: no provider to credit
            continue
        if outcome == OUTCOME_DECLINED:
            continue  # the MCP server declined a delegation: nothing was called (see outcomes)
        if outcome == OUTCOME_ROUTED:
            # A hook (or `route --log`) classified a prompt; no model was called. Counting these
            # as requests would count a proxied turn twice and skew the provider shares.
            result.classified[provider] = result.classified.get(provider, 0) + count
            continue
        entry = by_provider.setdefault(
            provider, ProviderStats(provider, 0, 0.0, 0, 0, 0, 0, 0.0, 0.0)
        )
        entry.requests += count
        entry.input_tokens += int(tin)
        entry.output_tokens += int(tout)
        entry.cache_read_tokens += int(tcr)
        entry.cache_write_tokens += int(tcw)
        entry.cost += cost
        entry.baseline_cost += baseline
        result.requests += count
        result.cost += cost
        result.baseline_cost += baseline
        if outcome == OUTCOME_ERROR:
            result.errors += count
        # A row that says where it fell back from, or that is marked a fallback, counts once.
        result.fallbacks += count if outcome == OUTCOME_FALLBACK else int(fallback_rows)
    for entry in by_provider.values():
        entry.share = entry.requests / result.requests if result.requests else 0.0
    result.providers = sorted(by_provider.values(), key=lambda p: (-p.requests, p.provider))
    result.context_truncated = _count_error_class(
        conn, ERROR_CONTEXT_TRUNCATED, since, until, source, session
    )
    result.checked_failures = model_checks(conn, since, until, source, session, passed=False)
    return result


def _period_filters(
    since: float | None, until: float, source: str | None, session: str | None
) -> tuple[str, list[Any]]:
    sql = " AND ts >= ? AND ts <= ?"
    params: list[Any] = [since if since is not None else float("-inf"), until]
    if source is not None:
        sql += " AND source = ?"
        params.append(source)
    if session is not None:
        sql += " AND session_id = ?"
        params.append(session)
    return sql, params


def model_checks(
    conn: sqlite3.Connection,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
    session: str | None = None,
    *,
    passed: bool = True,
) -> list[ModelChecks]:
    """Checked answers per model over the period, most failures first: the failed ones (few
    rows, read through their partial index) and, with `passed`, those that passed — a read of
    every checked row in the period (through its own index), which `doctor` can afford over a
    month and `stats` over a million-row log cannot."""
    until = time.time() if until is None else until
    filters, params = _period_filters(since, until, source, session)
    entries: dict[tuple[str, str], ModelChecks] = {}

    def entry(provider: str, model: str) -> ModelChecks:
        return entries.setdefault((provider, model), ModelChecks(provider, model))

    # A row names a failed model only with the check it failed as its error class.
    for provider, model, check, count in conn.execute(
        "SELECT failed_provider, failed_model, error_class, COUNT(*) FROM decisions "
        f"WHERE failed_model IS NOT NULL{filters} "
        "GROUP BY failed_provider, failed_model, error_class",
        params,
    ):
        found = entry(str(provider), str(model))
        found.failed += int(count)
        found.checks[check] = found.checks.get(check, 0) + int(count)
    if passed:
        for found in entries.values():
            found.passed = 0
        for provider, model, count in conn.execute(
            "SELECT provider, model, COUNT(*) FROM decisions "
            f"WHERE answer_checked = 1{filters} GROUP BY provider, model",
            params,
        ):
            found = entry(str(provider), str(model))
            found.passed = (found.passed or 0) + int(count)
    return sorted(entries.values(), key=lambda e: (-e.failed, e.provider, e.model))


def _count_error_class(
    conn: sqlite3.Connection,
    error_class: str,
    since: float | None,
    until: float,
    source: str | None,
    session: str | None,
) -> int:
    """Rows of one error class in the period (through the error-class index: few rows)."""
    sql = "SELECT COUNT(*) FROM decisions WHERE error_class = ? AND ts >= ? AND ts <= ?"
    params: list[Any] = [error_class, since if since is not None else float("-inf"), until]
    if source is not None:
        sql += " AND source = ?"
        params.append(source)
    if session is not None:
        sql += " AND session_id = ?"
        params.append(session)
    (count,) = conn.execute(sql, params).fetchone()
    return int(count)
