"""The stats as CSV (`hybrid-router stats --format csv`); JSON is `Stats.to_dict()`.

CSV is one row per provider, with exactly the fields of the JSON `providers` entries, plus a
header row; it is written with the `csv` module, so quoting is always right.
"""

from __future__ import annotations

import csv
import io

from .stats import Stats

# The fields of each `providers` entry of `Stats.to_dict()`, in that order.
PROVIDER_COLUMNS = (
    "provider",
    "requests",
    "share",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost",
    "baseline_cost",
    "savings",
)


def stats_csv(stats: Stats) -> str:
    """A header and one row per provider (none when nothing was called in the period)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PROVIDER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in stats.to_dict()["providers"]:
        writer.writerow({name: entry[name] for name in PROVIDER_COLUMNS})
    return buffer.getvalue()
