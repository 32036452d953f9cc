"""Plain-text renderings shared by the CLI and (later) the MCP `route_stats` tool."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..core.text import shown
from .stats import Stats


def money(value: float) -> str:
    return f"${value:,.4f}" if abs(value) < 100 else f"${value:,.2f}"


def period_label(stats: Stats) -> str:
    if stats.since is None:
        return "all time"
    start = datetime.fromtimestamp(stats.since).astimezone()
    return f"since {start:%Y-%m-%d %H:%M}"


def _table(headers: list[str], rows: list[list[str]], left_columns: int = 1) -> list[str]:
    """Columns padded to width: the first `left_columns` (text) left-aligned, the rest right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for index, row in enumerate([headers, *rows]):
        cells = [
            str(cell).ljust(width) if col < left_columns else str(cell).rjust(width)
            for col, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def stats_text(stats: Stats) -> str:
    scope = f", source {shown(stats.source)}" if stats.source else ""
    scope += f", session {shown(stats.session)}" if stats.session else ""
    noun = "decision" if stats.decisions == 1 else "decisions"
    lines = [f"Routing stats, {period_label(stats)}{scope}: {stats.decisions:,} {noun}"]
    if not stats.decisions:
        lines.append("No decisions logged in this period yet.")
        return "\n".join(lines)
    if stats.classified:
        counts = ", ".join(
            f"{shown(p)} {n:,}" for p, n in sorted(stats.classified.items(), key=lambda i: -i[1])
        )
        total = sum(stats.classified.values())
        lines.append(f"Prompts classified without calling a model: {total:,} ({counts})")
    if stats.rejected:
        lines.append(
            f"Requests refused before routing (malformed, too large, no token): {stats.rejected:,}"
        )
    if not stats.requests:
        return "\n".join(lines)
    rows = [
        [
            shown(p.provider),
            f"{p.requests:,}",
            f"{p.share * 100:.1f}%",
            f"{p.input_tokens:,}",
            f"{p.output_tokens:,}",
            money(p.cost),
            money(p.savings),
        ]
        for p in stats.providers
    ]
    lines.append("")
    headers = ["provider", "requests", "share", "in tokens", "out tokens", "cost", "saved"]
    lines.extend(_table(headers, rows))
    lines.append("")
    lines.append(f"Cost                 {money(stats.cost)}")
    lines.append(f"Cost without router  {money(stats.baseline_cost)}")
    lines.append(f"Saved                {money(stats.savings)} ({stats.savings_percent:.1f}%)")
    lines.append(f"Fallbacks {stats.fallbacks:,}   Errors {stats.errors:,}")
    if stats.context_truncated:
        lines.append(
            f"Prompts a local server cut (it read under half the tokens): "
            f"{stats.context_truncated:,}"
        )
    if stats.checked_failures:
        lines.append("")
        lines.append("Answers that failed a check (the next link answered instead):")
        entries = stats.checked_failures
        table = _table(
            ["model", "failed"],
            [[shown(f"{e.provider}/{e.model}"), f"{e.failed:,}"] for e in entries],
        )
        named = [
            ", ".join(f"{shown(c)} {n:,}" for c, n in e.to_dict()["checks"].items())
            for e in entries
        ]
        width = max(len(line) for line in table)
        for line, checks in zip(table, ["checks", "-" * 6, *named], strict=True):
            lines.append(f"  {line.ljust(width)}  {checks}")
    return "\n".join(lines)


def recent_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No recent decisions."
    table_rows = [
        [
            datetime.fromtimestamp(row["ts"]).astimezone().strftime("%m-%d %H:%M:%S"),
            shown(row["source"]),
            shown(row["rule"]),
            shown(f"{row['provider']}/{row['model']}"),
            shown(row["outcome"]),
            money(row["cost"] or 0.0),
        ]
        for row in rows
    ]
    headers = ["time", "source", "rule", "target", "outcome", "cost"]
    return "\n".join(_table(headers, table_rows, left_columns=5))
