"""The dashboard's numbers: one JSON summary of the decision log for a period.

Totals and the provider mix come from `compute_stats` (whole UTC days from the daily totals
table, the partial days at the ends read row by row). The timeline does the same per day, or per
hour from the rows themselves when the period is 48 hours or less. Rule hits and latency
percentiles need columns the daily totals do not keep, so they read the period's rows through the
`ts` index: the rule counts in one grouped query, the latencies from at most the newest
`LATENCY_SAMPLE` rows that have one. Nothing here writes; no prompt text is ever returned.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ..core.outcomes import OUTCOME_ERROR, OUTCOME_FALLBACK, OUTCOME_ROUTED
from ..log.migrations import SECONDS_PER_DAY
from ..log.periods import period_rows, split_period
from ..log.stats import compute_stats, parse_since

SECONDS_PER_HOUR = 3600
HOURLY_MAX_SECONDS = 48 * SECONDS_PER_HOUR  # periods up to this long are charted per hour
LATENCY_SAMPLE = 50_000  # percentiles over at most this many of the period's newest rows
RECENT_LIMIT = 25
PERCENTILES = (50, 90, 99)
RECENT_COLUMNS = (
    "id",
    "ts",
    "source",
    "rule",
    "provider",
    "model",
    "tier",
    "complexity",
    "outcome",
    "latency_ms",
    "ttft_ms",
    "cost",
    "baseline_cost",
    "fallback_from",
    "error_class",
    "input_tokens",
    "output_tokens",
)

# `{size}` is the bucket's length in seconds (an hour or a day), written into the SQL.
_RAW_BUCKETS = """
    SELECT CAST(ts / {size} AS INTEGER) AS bucket, outcome, COUNT(*), TOTAL(cost),
           TOTAL(baseline_cost), COUNT(fallback_from)
    FROM decisions WHERE ts >= ? AND ts <= ? GROUP BY bucket, outcome
"""
_DAY_BUCKETS = """
    SELECT day, outcome, SUM(requests), SUM(cost), SUM(baseline_cost), SUM(fallbacks)
    FROM decision_totals WHERE day >= ? AND day < ? GROUP BY day, outcome
"""


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _bucket_rows(
    conn: sqlite3.Connection, since: float | None, until: float, size: int
) -> list[tuple[Any, ...]]:
    """(bucket, outcome, count, cost, baseline, fallback rows) for [since, until].

    Hour buckets read the rows; day buckets take whole days from `decision_totals` and read
    only the partial first and last day.
    """
    raw = _RAW_BUCKETS.format(size=int(size))
    if size == SECONDS_PER_HOUR:
        low = since if since is not None else float("-inf")
        return conn.execute(raw, (low, until)).fetchall()
    return period_rows(conn, since, until, _DAY_BUCKETS, raw)


def timeline(
    conn: sqlite3.Connection, since: float | None, until: float
) -> tuple[str, list[dict[str, Any]]]:
    """Per-bucket requests, cost, cost without the router, savings, fallbacks and errors.

    Every bucket from the period's start (or the first logged one, for all time) to its end is
    present, empty ones as zeros, so a chart's x axis is time. Decision-only rows (hooks) are
    not requests and are left out, as in `compute_stats`.
    """
    size = (
        SECONDS_PER_HOUR
        if since is not None and until - since <= HOURLY_MAX_SECONDS
        else SECONDS_PER_DAY
    )
    buckets: dict[int, dict[str, Any]] = {}
    for bucket, outcome, count, cost, baseline, fallback_rows in _bucket_rows(
        conn, since, until, size
    ):
        if not count or outcome == OUTCOME_ROUTED:
            continue
        entry = buckets.setdefault(
            int(bucket),
            {"requests": 0, "cost": 0.0, "baseline_cost": 0.0, "fallbacks": 0, "errors": 0},
        )
        entry["requests"] += int(count)
        entry["cost"] += cost or 0.0
        entry["baseline_cost"] += baseline or 0.0
        entry["fallbacks"] += int(count) if outcome == OUTCOME_FALLBACK else int(fallback_rows or 0)
        if outcome == OUTCOME_ERROR:
            entry["errors"] += int(count)
    if since is not None:
        first = int(since // size)
    elif buckets:
        first = min(buckets)
    else:
        first = int(until // size)
    last = int(until // size)
    points = []
    for bucket in range(first, last + 1):
        entry = buckets.get(
            bucket, {"requests": 0, "cost": 0.0, "baseline_cost": 0.0, "fallbacks": 0, "errors": 0}
        )
        points.append(
            {
                "t": bucket * size,
                "requests": entry["requests"],
                "cost": round(entry["cost"], 6),
                "baseline_cost": round(entry["baseline_cost"], 6),
                "savings": round(entry["baseline_cost"] - entry["cost"], 6),
                "fallbacks": entry["fallbacks"],
                "errors": entry["errors"],
            }
        )
    return ("hour" if size == SECONDS_PER_HOUR else "day"), points


class RuleHitCache:
    """Rule counts of whole past UTC days, kept between refreshes of an open dashboard.

    A past day's rows rarely change, so a refresh reads only the partial days at the ends of the
    period. Each cached day is checked against the daily totals table (one cheap grouped query):
    a day whose row count changed (an import, a deletion) is read again.
    """

    def __init__(self, max_days: int = 4000) -> None:
        self.days: dict[int, tuple[int, dict[str, int]]] = {}
        self.max_days = max_days
        self.lock = threading.Lock()  # the dashboard's requests run in a thread pool

    def whole_days(self, conn: sqlite3.Connection, first: int, last: int) -> dict[str, int]:
        """Rule counts over the whole days [first, last)."""
        if first >= last:
            return {}
        with self.lock:
            return self._whole_days(conn, first, last)

    def _whole_days(self, conn: sqlite3.Connection, first: int, last: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        totals = dict(
            conn.execute(
                "SELECT day, SUM(requests) FROM decision_totals WHERE day >= ? AND day < ? "
                "GROUP BY day",
                (first, last),
            ).fetchall()
        )
        stale = [
            day
            for day, rows in totals.items()
            if rows and (day not in self.days or self.days[day][0] != rows)
        ]
        for day in stale:
            # One small grouped query per day sorts far less than one over the whole period.
            rules = conn.execute(
                "SELECT rule, COUNT(*) FROM decisions WHERE ts >= ? AND ts < ? GROUP BY rule",
                (day * SECONDS_PER_DAY, (day + 1) * SECONDS_PER_DAY),
            ).fetchall()
            self.days[day] = (int(totals[day]), {rule: int(count) for rule, count in rules})
        if len(self.days) > self.max_days:  # forget days outside this period first
            for day in [d for d in self.days if not first <= d < last][
                : len(self.days) - self.max_days
            ]:
                del self.days[day]
        for day, rows in totals.items():
            if rows and day in self.days:
                for rule, count in self.days[day][1].items():
                    counts[rule] = counts.get(rule, 0) + count
        return counts


def _raw_rule_counts(
    conn: sqlite3.Connection, low: float, high: float, counts: dict[str, int]
) -> None:
    for rule, count in conn.execute(
        "SELECT rule, COUNT(*) FROM decisions WHERE ts >= ? AND ts <= ? GROUP BY rule",
        (low, high),
    ):
        counts[rule] = counts.get(rule, 0) + int(count)


def rule_hits(
    conn: sqlite3.Connection,
    since: float | None,
    until: float,
    cache: RuleHitCache | None = None,
) -> list[dict[str, Any]]:
    """Decisions per rule (requests and hook classifications alike), most hit first.

    Whole days are counted one day at a time (small sorts) and kept in `cache` when given, so
    the page's refreshes read only the partial days at the ends of the period.
    """
    counts: dict[str, int] = {}
    cache = cache if cache is not None else RuleHitCache()
    days, raw = split_period(since, until)
    if days is not None:
        counts = cache.whole_days(conn, *days)
    for low, high in raw:
        _raw_rule_counts(conn, low, high, counts)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"rule": rule, "hits": count} for rule, count in ranked if count]


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _percentiles(values: list[float]) -> dict[str, Any]:
    values.sort()
    result: dict[str, Any] = {"count": len(values)}
    for p in PERCENTILES:
        value = percentile(values, p)
        result[f"p{p}"] = None if value is None else round(value, 1)
    return result


def latency(
    conn: sqlite3.Connection, since: float | None, until: float, sample: int = LATENCY_SAMPLE
) -> dict[str, Any]:
    """p50/p90/p99 of latency_ms and ttft_ms, overall and per provider, over the period's newest
    `sample` rows that have either (newest first through the ts index, so the cost is bounded)."""
    low = since if since is not None else float("-inf")
    rows = conn.execute(
        "SELECT provider, latency_ms, ttft_ms FROM decisions WHERE ts >= ? AND ts <= ? "
        "AND (latency_ms IS NOT NULL OR ttft_ms IS NOT NULL) ORDER BY ts DESC LIMIT ?",
        (low, until, sample),
    ).fetchall()
    total: list[float] = []
    first: list[float] = []
    per_provider: dict[str, tuple[list[float], list[float]]] = {}
    for provider, latency_ms, ttft_ms in rows:
        own = per_provider.setdefault(provider, ([], []))
        if latency_ms is not None:
            total.append(latency_ms)
            own[0].append(latency_ms)
        if ttft_ms is not None:
            first.append(ttft_ms)
            own[1].append(ttft_ms)
    providers = [
        {"provider": name, "latency_ms": _percentiles(lat), "ttft_ms": _percentiles(ttft)}
        for name, (lat, ttft) in sorted(
            per_provider.items(), key=lambda kv: (-len(kv[1][0]), kv[0])
        )
    ]
    return {
        "latency_ms": _percentiles(total),
        "ttft_ms": _percentiles(first),
        "providers": providers,
        "rows": len(rows),
        "sample_limit": sample,
        "sampled": len(rows) >= sample,
    }


def recent_decisions(
    conn: sqlite3.Connection, since: float | None, until: float, limit: int = RECENT_LIMIT
) -> list[dict[str, Any]]:
    """The newest decisions of the period, without the prompt (neither text, hash nor length)."""
    low = since if since is not None else float("-inf")
    cursor = conn.execute(
        f"SELECT {', '.join(RECENT_COLUMNS)} FROM decisions WHERE ts >= ? AND ts <= ? "
        "ORDER BY ts DESC, id DESC LIMIT ?",
        (low, until, limit),
    )
    return [dict(zip(RECENT_COLUMNS, values, strict=True)) for values in cursor.fetchall()]


def summary(
    conn: sqlite3.Connection,
    since: str | None = "24h",
    now: float | None = None,
    recent_limit: int = RECENT_LIMIT,
    cache: RuleHitCache | None = None,
) -> dict[str, Any]:
    """Everything the dashboard shows for the period `since` (24h, 7d, 30d, all, an ISO date...).

    Raises `stats.PeriodError` for a period it cannot read.
    """
    started = time.perf_counter()
    until = time.time() if now is None else now
    since_ts = parse_since(since, now=until)
    stats = compute_stats(conn, since=since_ts, until=until).to_dict()
    bucket, points = timeline(conn, since_ts, until)
    result: dict[str, Any] = {
        "period": {
            "since": since or "all",
            "since_ts": since_ts,
            "until_ts": until,
            "since_iso": _iso(since_ts),
            "until_iso": _iso(until),
            "bucket": bucket,
        },
        "totals": {
            key: stats[key]
            for key in (
                "decisions",
                "requests",
                "cost",
                "baseline_cost",
                "savings",
                "savings_percent",
                "fallbacks",
                "errors",
            )
        },
        "classified": stats["classified"],
        "providers": stats["providers"],
        "outcomes": stats["outcomes"],
        # Per model, answers that failed the proxy's checks (the next link answered instead).
        "checked_failures": stats["checked_failures"],
        "timeline": points,
        "rules": rule_hits(conn, since_ts, until, cache),
        "latency": latency(conn, since_ts, until),
        "recent": recent_decisions(conn, since_ts, until, recent_limit),
    }
    result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result
