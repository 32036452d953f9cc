"""Train the intent model on the build part of bench/data/intent-labeled.jsonl and write
settings-templates/intent-model.json (the weights that ship in the wheel).

The held-out parts are never read here. The premium cost and the vote threshold are chosen by
5-fold cross-validation on the build part, scoring each setting by the routes `decide` picks
with the default config (the model's vote combined with the keyword routes, as in production):
a premium prompt sent to a local model counts PREMIUM_MISS_WEIGHT times as much as any other
wrong route (a security review done by a small local model costs the user more than a paid turn
that could have run free). Among the settings within TOLERANCE of the fewest weighted misses
(closer than cross-validation can tell apart), the highest threshold wins: the readable keyword
routes then keep a say whenever the model is unsure.

Usage: .venv/bin/python bench/train_intent.py [--check]   (--check: train, do not write)
Takes a few minutes: pure-Python training, two folds at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from multiprocessing import Pool
from pathlib import Path

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, load_config
from hybrid_router.core import intent
from hybrid_router.core.intent_model import IntentModel
from hybrid_router.core.intent_train import to_json, train
from hybrid_router.core.routing import decide
from hybrid_router.core.signals import signals_from_prompt

DATA = Path(__file__).resolve().parent / "data" / "intent-labeled.jsonl"
OUT = Path(__file__).resolve().parents[1] / "settings-templates" / intent.MODEL_FILENAME
# The routes come from the default config (the model's classes, in its order, then the default
# route); the premium ones are those whose target is the premium tier.
TABLE = routing_table(load_config(default_config_path()).config)
CLASSES = tuple(route.name for route in TABLE.routes) + (TABLE.default_route.name,)
PREMIUM = tuple(route.name for route in TABLE.routes if route.target.tier == "premium")
PREMIUM_MISS_WEIGHT = 10
TOLERANCE = 0.01  # of the fewest weighted misses
COSTS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
FOLDS = 5

Ranked = list[tuple[str, float]]


def load(split: str) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    return [(row["prompt"], row["route"]) for row in rows if row["split"] == split]


def costs_for(premium_cost: float) -> tuple[float, ...]:
    return tuple(premium_cost if name in PREMIUM else 1.0 for name in CLASSES)


def fold_probabilities(index: int) -> list[tuple[str, str, Ranked]]:
    """Train on every fold but `index`; each prompt of `index` with its label and the
    model's probabilities (computed once: the grid below only re-weighs them)."""
    build = load("build")
    rest = [example for position, example in enumerate(build) if position % FOLDS != index]
    model = train(rest, CLASSES, 0.0)
    return [(prompt, route, model.probabilities(prompt)) for prompt, route in build[index::FOLDS]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="train and report, do not write")
    args = parser.parse_args()
    build = load("build")
    with Pool(2) as pool:
        scored = [item for part in pool.map(fold_probabilities, range(FOLDS)) for item in part]
    results: dict[tuple[float, float], tuple[int, int, int]] = {}
    premium_total = sum(route in PREMIUM for _, route, _ in scored)
    for cost in COSTS:
        for threshold in THRESHOLDS:
            # A model with these costs and threshold, only to vote on the scored probabilities.
            judge = IntentModel(CLASSES, (0.0,) * len(CLASSES), {}, threshold, costs_for(cost))
            right = premium = weighted = 0
            for prompt, route, ranked in scored:
                vote = judge.vote_on(ranked)
                decision = decide(signals_from_prompt(prompt), TABLE, lambda _, v=vote: v)
                right += decision.rule == route
                missed_premium = route in PREMIUM and decision.tier != "premium"
                premium += route in PREMIUM and not missed_premium
                if decision.rule != route:
                    weighted += PREMIUM_MISS_WEIGHT if missed_premium else 1
            results[(cost, threshold)] = (weighted, right, premium)
            print(
                f"cost {cost:.1f} threshold {threshold:.1f}: accuracy {right / len(scored):.3f}, "
                f"premium recall {premium}/{premium_total}, weighted misses {weighted}"
            )
    fewest = min(weighted for weighted, _, _ in results.values())
    close = [key for key, tally in results.items() if tally[0] <= fewest * (1 + TOLERANCE)]
    cost, threshold = max(close, key=lambda key: (key[1], -results[key][0]))
    print(
        f"chosen by {FOLDS}-fold cross-validation on the build part ({len(build)} prompts): "
        f"premium cost {cost}, threshold {threshold}"
    )
    model = train(build, CLASSES, threshold, costs=costs_for(cost))
    weighted, right, premium = results[(cost, threshold)]
    about = {
        "trained_on": f"the build part of bench/data/intent-labeled.jsonl ({len(build)} prompts)",
        "how": "bench/train_intent.py: multinomial logistic regression (AdaGrad, L2)",
        "chosen_by": (
            f"{FOLDS}-fold cross-validation on the build part: fewest misses, a premium miss "
            f"weighing {PREMIUM_MISS_WEIGHT}; within {TOLERANCE:.0%} of those, the highest "
            "threshold"
        ),
        "cross_validation": {
            "accuracy": round(right / len(scored), 4),
            "premium_recall": f"{premium}/{premium_total}",
        },
    }
    if args.check:
        print(f"{len(model.weights)} features (not written: --check)")
        return
    OUT.write_text(to_json(model, about), encoding="utf-8")
    print(f"wrote {OUT} ({len(model.weights)} features, {OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    sys.exit(main())
