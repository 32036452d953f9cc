"""`stats` over a decision log of one million rows.

Builds the log once under bench/.results/ (reused on later runs), then times, in one run,
the all-time and last-24h aggregates the `stats` command computes, against the floor of a bare
`SELECT COUNT(*)` over the same table. Target: all-time stats p50 <= 200 ms.

Usage: .venv/bin/python bench/stats_1m.py [--rows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from _timing import timed_ms

from hybrid_router.core.outcomes import SOURCES
from hybrid_router.log.database import connect
from hybrid_router.log.rows import DecisionRow, record_many
from hybrid_router.log.stats import compute_stats

RESULTS = Path(__file__).resolve().parent / ".results"
PROVIDERS = (("ollama", 0.55), ("openrouter", 0.15), ("anthropic", 0.25), ("llamacpp", 0.05))
OUTCOMES = ("ok",) * 90 + ("fallback",) * 6 + ("error",) * 3 + ("truncated",)


def build(path: Path, rows: int) -> None:
    rng = random.Random(7)
    now = time.time()
    conn = connect(path)
    names = [name for name, _ in PROVIDERS]
    weights = [weight for _, weight in PROVIDERS]
    batch = []
    for index in range(rows):
        provider = rng.choices(names, weights)[0]
        tokens_in, tokens_out = rng.randint(200, 40_000), rng.randint(10, 4_000)
        baseline = (tokens_in * 3 + tokens_out * 15) / 1e6
        outcome = rng.choice(OUTCOMES)
        batch.append(
            DecisionRow(
                source=rng.choice(SOURCES),
                rule=rng.choice(("file-operations", "code-generation", "security", "default")),
                provider=provider,
                model="m",
                outcome=outcome,
                ts=now - rng.random() * 90 * 86400,
                session_id=f"s{index % 5000}",
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost=baseline if provider == "anthropic" else 0.0,
                baseline_cost=baseline,
                fallback_from="ollama" if outcome == "fallback" else None,
                complexity="low",
            )
        )
        if len(batch) == 50_000:
            record_many(conn, batch)
            batch.clear()
    if batch:
        record_many(conn, batch)
    conn.execute("ANALYZE")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"stats-{args.rows}.db"
    if not path.exists():
        started = time.perf_counter()
        build(path, args.rows)
        print(f"built {args.rows:,} rows in {time.perf_counter() - started:.1f} s: {path}")
    conn = connect(path)
    count = conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    day_ago = time.time() - 86400

    floor = timed_ms(lambda: conn.execute("SELECT COUNT(*) FROM decisions").fetchone(), args.repeat)
    all_time = timed_ms(lambda: compute_stats(conn), args.repeat)
    last_day = timed_ms(lambda: compute_stats(conn, since=day_ago), args.repeat)
    floor_p50 = statistics.median(floor)
    print(f"rows: {count:,}, {args.repeat} runs each")
    print(f"{'':14} {'p50 ms':>8} {'max ms':>8} {'p50 / floor':>12}")
    for name, samples in (("count(*)", floor), ("stats all", all_time), ("stats 24h", last_day)):
        p50 = statistics.median(samples)
        print(f"{name:14} {p50:8.1f} {max(samples):8.1f} {p50 / floor_p50:11.1f}x")
    p50 = statistics.median(all_time)
    print(
        f"all-time stats p50 {p50:.1f} ms {'meets' if p50 <= 200 else 'MISSES'} the 200 ms target"
    )


if __name__ == "__main__":
    main()
