"""Machine-readable renderings of the stats: JSON (what `stats --json` prints) and CSV.

CSV is one row per provider, with exactly the fields of the JSON `providers` entries, plus a
header row; it is written with the `csv` module, so quoting is always right.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

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

FORMATS = ("text", "json", "csv")


def stats_json(stats: Stats, recent: list[dict[str, Any]] | None = None) -> str:
    data = stats.to_dict()
    if recent is not None:
        data["recent"] = recent
    return json.dumps(data, indent=2)


def stats_csv(stats: Stats) -> str:
    """A header and one row per provider (none when nothing was called in the period)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PROVIDER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in stats.to_dict()["providers"]:
        writer.writerow({name: entry[name] for name in PROVIDER_COLUMNS})
    return buffer.getvalue()
