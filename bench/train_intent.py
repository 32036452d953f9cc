"""Train the intent model on the build part of bench/data/intent-labeled.jsonl and write
settings-templates/intent-model.json (the weights that ship in the wheel).

The held-out part is never read here: the premium cost and the vote threshold are chosen by
5-fold cross-validation on the build part, scoring each setting by the routes `decide` picks
(the model's vote, else the keyword routes of the default config): premium recall first, then
accuracy.

Usage: .venv/bin/python bench/train_intent.py [--check]   (--check: train, do not write)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, load_config
from hybrid_router.core import intent
from hybrid_router.core.intent_train import to_json, train
from hybrid_router.core.routing import decide
from hybrid_router.core.signals import signals_from_prompt

DATA = Path(__file__).resolve().parent / "data" / "intent-labeled.jsonl"
OUT = Path(__file__).resolve().parents[1] / "settings-templates" / intent.MODEL_FILENAME
CLASSES = (
    "security",
    "critical",
    "web-search",
    "code-generation",
    "architecture",
    "file-operations",
    "default",
)
PREMIUM = ("security", "critical", "web-search")
COSTS = (1.0, 1.5, 2.0, 2.5)
THRESHOLDS = (0.0, 0.2, 0.3)


def load(split: str) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    return [(row["prompt"], row["route"]) for row in rows if row["split"] == split]


def costs_for(premium_cost: float) -> tuple[float, ...]:
    return tuple(premium_cost if name in PREMIUM else 1.0 for name in CLASSES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="train and report, do not write")
    args = parser.parse_args()
    build = load("build")
    table = routing_table(load_config(default_config_path()).config)
    folds = [build[index::5] for index in range(5)]
    results: dict[tuple[float, float], list[int]] = {}
    for index, fold in enumerate(folds):
        rest = [example for other, part in enumerate(folds) if other != index for example in part]
        model = train(rest, CLASSES, 0.0)
        for cost in COSTS:
            for threshold in THRESHOLDS:
                model.costs, model.threshold = costs_for(cost), threshold
                model._votes.clear()
                tally = results.setdefault((cost, threshold), [0, 0, 0, 0])
                for prompt, route in fold:
                    decision = decide(signals_from_prompt(prompt), table, model)
                    tally[0] += decision.rule == route
                    tally[1] += 1
                    if route in PREMIUM:
                        tally[2] += decision.tier == "premium"
                        tally[3] += 1
    for (cost, threshold), (right, total, premium, premium_total) in sorted(results.items()):
        print(
            f"cost {cost:.1f} threshold {threshold:.1f}: accuracy {right / total:.3f}, "
            f"premium recall {premium}/{premium_total}"
        )
    best = max(results, key=lambda key: (results[key][2], results[key][0]))
    cost, threshold = best
    print(
        f"chosen by cross-validation on the build part: premium cost {cost}, threshold {threshold}"
    )
    model = train(build, CLASSES, threshold, costs=costs_for(cost))
    about = {
        "trained_on": f"the build part of bench/data/intent-labeled.jsonl ({len(build)} prompts)",
        "how": "bench/train_intent.py: multinomial logistic regression (AdaGrad, L2)",
        "chosen_by": "5-fold cross-validation on the build part",
    }
    if args.check:
        print(f"{len(model.weights)} features (not written: --check)")
        return
    OUT.write_text(to_json(model, about), encoding="utf-8")
    print(f"wrote {OUT} ({len(model.weights)} features, {OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    sys.exit(main())
