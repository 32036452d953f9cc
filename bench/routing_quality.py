"""Routing quality on the held-out part of bench/data/intent-labeled.jsonl.

Every prompt goes the way the prompt hook and the proxy send it: `decide(signals_from_prompt(p),
<default config's table>, <intent model>)`. Prints the number of prompts measured, per-route
precision and recall, overall accuracy, the confusion table, premium recall (security, critical
and web-search prompts that reach the premium tier), the misses, and the decision time (p50 and
worst, first sight of each prompt), and accuracy and premium recall for each set the part
holds (a row's `set`: the held-out part has the prompts written with the labeled set, and a
fresh set written after the model was built, by a writer who saw neither the build part nor
the repository). `--keywords-only` measures the keyword routes alone.
Targets: premium recall 100 %, accuracy >= 97 %.

Usage: .venv/bin/python bench/routing_quality.py [--keywords-only] [--split heldout|build]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, load_config
from hybrid_router.core.intent import load_model
from hybrid_router.core.routing import decide
from hybrid_router.core.signals import signals_from_prompt

DATA = Path(__file__).resolve().parent / "data" / "intent-labeled.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keywords-only", action="store_true")
    parser.add_argument("--split", default="heldout", choices=("heldout", "build"))
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    examples = [
        (row["prompt"], row["route"], row.get("set", ""))
        for row in rows
        if row["split"] == args.split
    ]
    table = routing_table(load_config(default_config_path()).config)
    # The shipped model alone: a home of its own, so no user examples tune it.
    with tempfile.TemporaryDirectory() as scratch:
        model = None if args.keywords_only else load_model({"HYBRID_ROUTER_HOME": scratch})
    names = [route.name for route in table.routes] + [table.default_route.name]
    confusion: dict[tuple[str, str], int] = {}
    misses: list[tuple[str, str, str, str]] = []
    times: list[float] = []
    premium = {route.name for route in table.routes if route.target.tier == "premium"}
    by_set: dict[str, list[int]] = {}  # set -> [prompts, right, premium prompts, premium hits]
    for prompt, label, written in examples:
        signals = signals_from_prompt(prompt)
        started = time.perf_counter()
        decision = decide(signals, table, model)
        times.append((time.perf_counter() - started) * 1000)
        got = decision.rule
        confusion[label, got] = confusion.get((label, got), 0) + 1
        tally = by_set.setdefault(written, [0, 0, 0, 0])
        tally[0] += 1
        tally[1] += got == label
        if label in premium:
            tally[2] += 1
            tally[3] += decision.tier == "premium"
        if got != label:
            misses.append((label, got, decision.tier or "", prompt))

    _, right, premium_total, premium_hits = (sum(column) for column in zip(*by_set.values()))
    signal = "keyword routes only" if args.keywords_only else "intent model + keyword routes"
    print(f"{len(examples)} prompts measured ({args.split} part of {DATA.name}; {signal})\n")
    print(f"{'route':<16} {'n':>4} {'precision':>10} {'recall':>8}")
    for name in names:
        actual = sum(n for (label, _), n in confusion.items() if label == name)
        predicted = sum(n for (_, got), n in confusion.items() if got == name)
        hit = confusion.get((name, name), 0)
        precision = f"{hit / predicted:.1%}" if predicted else "-"
        recall = f"{hit / actual:.1%}" if actual else "-"
        print(f"{name:<16} {actual:>4} {precision:>10} {recall:>8}")
    print(f"\naccuracy        {right}/{len(examples)} = {right / len(examples):.1%}  (target 97 %)")
    print(
        f"premium recall  {premium_hits}/{premium_total} = {premium_hits / premium_total:.1%}"
        "  (security, critical, web-search reaching the premium tier; target 100 %)"
    )
    if len(by_set) > 1:
        for written, (count, hits, premium_count, premium_reached) in sorted(by_set.items()):
            print(
                f"  set {written or '-':<10} {count:>4} prompts: accuracy {hits / count:.1%}, "
                f"premium recall {premium_reached}/{premium_count}"
            )
    others = sorted({got for _, got in confusion} - set(names))
    columns = names + others
    short = {name: name[:8] for name in columns}
    print("\nconfusion (rows: label, columns: decided rule)")
    print(" " * 16 + "".join(f"{short[c]:>9}" for c in columns))
    for name in names:
        cells = "".join(f"{confusion.get((name, c), 0) or '.':>9}" for c in columns)
        print(f"{name:<16}{cells}")
    print(f"\nmisses ({len(misses)}):")
    for label, got, tier, prompt in misses:
        flag = "  PREMIUM->LOCAL" if label in premium and tier != "premium" else ""
        shown = " ".join(prompt.split())
        shown = shown if len(shown) <= 90 else shown[:87] + "..."
        print(f"  {label} -> {got} ({tier}){flag}: {shown}")
    print(
        f"\ndecision time (first sight of each prompt): p50 {statistics.median(times):.3f} ms, "
        f"worst {max(times):.3f} ms"
    )


if __name__ == "__main__":
    os.environ.pop("HYBRID_ROUTER_CONFIG", None)
    sys.exit(main())
