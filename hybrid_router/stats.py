"""Aggregates over the decision log: per provider, cost, cost without the router, savings.

One grouped query over the period (the `ts` index bounds it), so a million rows stay fast.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

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
class Stats:
    since: float | None
    until: float
    source: str | None
    requests: int = 0
    cost: float = 0.0
    baseline_cost: float = 0.0
    fallbacks: int = 0
    errors: int = 0
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
            "requests": self.requests,
            "cost": round(self.cost, 6),
            "baseline_cost": round(self.baseline_cost, 6),
            "savings": round(self.savings, 6),
            "savings_percent": round(self.savings_percent, 2),
            "fallbacks": self.fallbacks,
            "errors": self.errors,
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
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def compute_stats(
    conn: sqlite3.Connection,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
) -> Stats:
    until = time.time() if until is None else until
    clauses, params = ["ts <= ?"], [until]
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
    where = " AND ".join(clauses)
    result = Stats(since=since, until=until, source=source)
    rows = conn.execute(
        f"""
        SELECT provider, outcome, COUNT(*),
               TOTAL(input_tokens), TOTAL(output_tokens),
               TOTAL(cache_read_tokens), TOTAL(cache_write_tokens),
               TOTAL(cost), TOTAL(baseline_cost), COUNT(fallback_from)
        FROM decisions WHERE {where}
        GROUP BY provider, outcome
        """,
        params,
    ).fetchall()
    by_provider: dict[str, ProviderStats] = {}
    for provider, outcome, count, tin, tout, tcr, tcw, cost, baseline, fallback_rows in rows:
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
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + count
        if outcome == "error":
            result.errors += count
        # A row that says where it fell back from, or that is marked a fallback, counts once.
        result.fallbacks += count if outcome == "fallback" else fallback_rows
    for entry in by_provider.values():
        entry.share = entry.requests / result.requests if result.requests else 0.0
    result.providers = sorted(by_provider.values(), key=lambda p: (-p.requests, p.provider))
    return result
