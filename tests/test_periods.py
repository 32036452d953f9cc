"""log.periods: a period as whole UTC days (from the daily totals) and the partial days at its
ends (from the rows), the one split `stats` and the dashboard read through."""

from __future__ import annotations

import math
import random
from contextlib import closing
from pathlib import Path

import pytest

from hybrid_router.log.database import connect
from hybrid_router.log.periods import FIRST_DAY, PeriodSplit, period_rows, split_period
from hybrid_router.log.rows import DecisionRow, record_many

DAY = 86400.0
D = 20_000  # a day number: D * DAY is a UTC midnight


def covers(split: PeriodSplit, ts: float) -> int:
    """How many parts of the split hold the instant `ts` (0 or 1 if the split is right)."""
    parts = sum(low <= ts <= high for low, high in split.raw)
    if split.days is not None:
        parts += split.days[0] <= ts // DAY < split.days[1]
    return parts


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        # within one day, or two partial days: all read row by row
        (D * DAY + 10, D * DAY + 500, PeriodSplit(None, ((D * DAY + 10, D * DAY + 500),))),
        (D * DAY + 10, (D + 1) * DAY + 5, PeriodSplit(None, ((D * DAY + 10, (D + 1) * DAY + 5),))),
        # a period from midnight: the first day is whole, nothing is read before it
        (
            D * DAY,
            (D + 3) * DAY + 7,
            PeriodSplit(
                (D, D + 3),
                ((D * DAY, math.nextafter(D * DAY, -math.inf)), ((D + 3) * DAY, (D + 3) * DAY + 7)),
            ),
        ),
        # partial days at both ends
        (
            D * DAY + 1,
            (D + 5) * DAY + 2,
            PeriodSplit(
                (D + 1, D + 5),
                (
                    (D * DAY + 1, math.nextafter((D + 1) * DAY, -math.inf)),
                    ((D + 5) * DAY, (D + 5) * DAY + 2),
                ),
            ),
        ),
        # no start: every day before the one holding `until`
        (
            None,
            (D + 2) * DAY + 3,
            PeriodSplit((FIRST_DAY, D + 2), (((D + 2) * DAY, (D + 2) * DAY + 3),)),
        ),
        # ending at midnight: that last day's single instant is read raw
        (None, D * DAY, PeriodSplit((FIRST_DAY, D), ((D * DAY, D * DAY),))),
    ],
)
def test_split_period(since: float | None, until: float, expected: PeriodSplit) -> None:
    assert split_period(since, until) == expected


def test_every_instant_of_a_period_is_in_exactly_one_part() -> None:
    rng = random.Random(5)
    midnights = [(D + k) * DAY for k in range(6)]
    for _ in range(300):
        points = [rng.choice(midnights) + rng.choice((0.0, 0.5, rng.random() * DAY)) for _ in "ab"]
        since, until = sorted(points)
        start = rng.choice((since, None))
        split = split_period(start, until)
        probes = [
            *midnights,
            since,
            until,
            *(rng.uniform(since - DAY, until + DAY) for _ in "x" * 40),
        ]
        probes += [math.nextafter(p, -math.inf) for p in probes] + [
            math.nextafter(p, math.inf) for p in probes
        ]
        for ts in probes:
            inside = (start is None or start <= ts) and ts <= until
            assert covers(split, ts) == int(inside), (start, until, ts, split)


def test_period_rows_runs_the_totals_then_each_raw_range(tmp_path: Path) -> None:
    rows = [
        DecisionRow(source="proxy", rule="r", provider=p, model="m", ts=ts, cost=1.0)
        for p, ts in [
            ("a", D * DAY + 100),  # partial first day
            ("a", (D + 1) * DAY),  # whole days
            ("b", (D + 2) * DAY + 5),
            ("b", (D + 3) * DAY + 50),  # partial last day
            ("b", (D + 3) * DAY + 5000),  # after `until`
        ]
    ]
    with closing(connect(tmp_path / "d.db")) as conn:
        record_many(conn, rows)
        got = period_rows(
            conn,
            D * DAY + 1,
            (D + 3) * DAY + 60,
            "SELECT 'totals', provider, SUM(requests) FROM decision_totals "
            "WHERE day >= ? AND day < ? AND provider != ? GROUP BY provider",
            "SELECT 'raw', provider, COUNT(*) FROM decisions "
            "WHERE ts >= ? AND ts <= ? AND provider != ? GROUP BY provider",
            ["nobody"],
        )
    assert got == [("totals", "a", 1), ("totals", "b", 1), ("raw", "a", 1), ("raw", "b", 1)]
