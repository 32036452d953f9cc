"""A period of the decision log as whole UTC days plus the partial days at its ends.

The log keeps per-day sums (`decision_totals`, maintained by triggers: migrations.py), so a
period's whole days are read from there and only its partial first and last day row by row from
`decisions`, through the `ts` index: a read over a year of a busy log costs about what a read
over two days does. `stats` and the dashboard (timeline, rule counts) split a period here.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from .migrations import SECONDS_PER_DAY

# The first day of a period without a start: before any row.
FIRST_DAY = -(2**62)


class PeriodSplit(NamedTuple):
    """[since, until] as whole UTC days and the instants around them.

    `days` is the day numbers [first, last) (a day number is `ts // 86400`) to read from the
    daily totals, or None when the period lies within at most two partial days. `raw` is the
    inclusive [low, high] ranges of `ts` to read from the rows: together they cover the period
    once, with no instant in two of them.
    """

    days: tuple[int, int] | None
    raw: tuple[tuple[float, float], ...]


def split_period(since: float | None, until: float) -> PeriodSplit:
    """Split [since, until] (since None: from the first row) at UTC midnights."""
    last_day = int(until // SECONDS_PER_DAY)  # the day holding `until` is read row by row
    if since is None:
        return PeriodSplit((FIRST_DAY, last_day), ((last_day * SECONDS_PER_DAY, until),))
    first_day = -int(-since // SECONDS_PER_DAY)  # the first day that starts at or after `since`
    if first_day >= last_day:
        return PeriodSplit(None, ((since, until),))
    head_end = math.nextafter(first_day * SECONDS_PER_DAY, -math.inf)  # the instant before
    return PeriodSplit(
        (first_day, last_day), ((since, head_end), (last_day * SECONDS_PER_DAY, until))
    )


def period_rows(
    conn: sqlite3.Connection,
    since: float | None,
    until: float,
    totals_sql: str,
    raw_sql: str,
    params: Sequence[Any] = (),
) -> list[tuple[Any, ...]]:
    """The rows of `totals_sql` over the period's whole days, then of `raw_sql` over the rest.

    `totals_sql` is run with (first day, last day, *params), for `day >= ? AND day < ?` on
    `decision_totals`; `raw_sql` with (low, high, *params) for `ts >= ? AND ts <= ?` on
    `decisions`, once per partial range. The two select the same columns with the same
    grouping; the caller adds up the rows of each group (a group can come from several ranges).
    """
    split = split_period(since, until)
    rows: list[tuple[Any, ...]] = []
    if split.days is not None:
        rows += conn.execute(totals_sql, [*split.days, *params]).fetchall()
    for low, high in split.raw:
        rows += conn.execute(raw_sql, [low, high, *params]).fetchall()
    return rows
