"""Training the intent model (core/intent.py): multinomial logistic regression, in pure Python.

Not on the hook's hot path: imported only to build the shipped weights
(`bench/train_intent.py`) and, once after the user's examples file changes, to tune the shipped
model on those examples (`tune`). Deterministic: the same examples give the same weights, so the
hook and the proxy, each building from the same files, agree.
"""

from __future__ import annotations

import json
import math

from .intent_model import IntentModel, features

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

Example = tuple[str, str]  # (prompt, route)


def read_examples(path: str, classes: Sequence[str] = ()) -> list[Example]:
    """(prompt, route) pairs from a JSONL file; lines that are not an object with a string
    `prompt` and a `route` among `classes` (when given) are skipped."""
    found: list[Example] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if not isinstance(item, dict):
                continue
            prompt, route = item.get("prompt"), item.get("route")
            if isinstance(prompt, str) and isinstance(route, str) and prompt.strip():
                if not classes or route in classes:
                    found.append((prompt, route))
    return found


def _vectors(examples: Sequence[Example]) -> list[tuple[list[str], float]]:
    vectors = []
    for prompt, _ in examples:
        found = features(prompt)
        vectors.append((found, 1.0 / math.sqrt(len(found) or 1)))
    return vectors


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


def _order(count: int, epoch: int) -> list[int]:
    """A deterministic shuffle (a linear congruential walk), the same on every machine."""
    state = 12345 + epoch * 7919
    order = list(range(count))
    for index in range(count - 1, 0, -1):
        state = (state * 1103515245 + 12345) % 2**31
        swap = state % (index + 1)
        order[index], order[swap] = order[swap], order[index]
    return order


def _fit(
    examples: Sequence[Example],
    classes: tuple[str, ...],
    weights: dict[str, list[float]],
    bias: list[float],
    prior: dict[str, tuple[float, ...]],
    epochs: int,
    rate: float,
    l2: float,
    sample_weight: float = 1.0,
) -> None:
    """AdaGrad on the cross-entropy, L2 toward `prior` (zero for a fresh model), in place."""
    count = len(classes)
    labels = [classes.index(route) for _, route in examples]
    vectors = _vectors(examples)
    squares: dict[str, list[float]] = {}
    bias_squares = [1e-8] * count
    zero = (0.0,) * count
    for epoch in range(epochs):
        for index in _order(len(examples), epoch):
            found, value = vectors[index]
            scores = list(bias)
            for feature in found:
                row = weights.get(feature)
                if row is not None:
                    for k in range(count):
                        scores[k] += row[k] * value
            probabilities = _softmax(scores)
            for k in range(count):
                gradient = (probabilities[k] - (1.0 if k == labels[index] else 0.0)) * sample_weight
                bias_squares[k] += gradient * gradient
                bias[k] -= rate * gradient / math.sqrt(bias_squares[k])
            for feature in found:
                row = weights.setdefault(feature, [0.0] * count)
                square = squares.setdefault(feature, [1e-8] * count)
                anchor = prior.get(feature, zero)
                for k in range(count):
                    gradient = (probabilities[k] - (1.0 if k == labels[index] else 0.0)) * value
                    gradient = gradient * sample_weight + l2 * (row[k] - anchor[k])
                    square[k] += gradient * gradient
                    row[k] -= rate * gradient / math.sqrt(square[k])


def train(
    examples: Sequence[Example],
    classes: Sequence[str],
    threshold: float,
    epochs: int = 40,
    rate: float = 0.3,
    l2: float = 1e-3,
    min_count: int = 1,
    costs: tuple[float, ...] = (),
) -> IntentModel:
    """A fresh model from labeled examples. Features seen in fewer than `min_count` examples are
    left out, and weights are rounded, to keep the shipped file and the hook's cache small."""
    names = tuple(classes)
    counts: dict[str, int] = {}
    for prompt, _ in examples:
        for feature in features(prompt):
            counts[feature] = counts.get(feature, 0) + 1
    weights: dict[str, list[float]] = {}
    bias = [0.0] * len(names)
    _fit(examples, names, weights, bias, {}, epochs, rate, l2)
    kept = {
        feature: tuple(round(w, 4) for w in row)
        for feature, row in weights.items()
        if counts.get(feature, 0) >= min_count and max(abs(w) for w in row) >= 1e-3
    }
    return IntentModel(names, tuple(round(b, 4) for b in bias), kept, threshold, costs)


def tune(model: IntentModel, examples: Sequence[Example], epochs: int = 30) -> IntentModel:
    """`model` moved toward the user's examples: AdaGrad on them alone, pulled back toward the
    shipped weights (L2 around them), so a handful of examples teach their own phrasing without
    unlearning the rest."""
    if not examples:
        return model
    prior = dict(model.weights)
    weights = {feature: list(row) for feature, row in model.weights.items()}
    bias = list(model.bias)
    bias_prior = list(model.bias)
    _fit(examples, model.classes, weights, bias, prior, epochs, rate=0.3, l2=0.01)
    bias = [round(b * 0.5 + p * 0.5, 4) for b, p in zip(bias, bias_prior, strict=True)]
    tuned = {feature: tuple(round(w, 4) for w in row) for feature, row in weights.items()}
    return IntentModel(model.classes, tuple(bias), tuned, model.threshold, model.costs)


def to_json(model: IntentModel, about: dict[str, object]) -> str:
    """The shipped file's text: the model and a few facts about how it was trained."""
    data = {
        "format": 1,
        "about": about,
        "classes": list(model.classes),
        "threshold": model.threshold,
        "costs": dict(zip(model.classes, model.costs, strict=True)),
        "bias": list(model.bias),
        "weights": {feature: list(row) for feature, row in sorted(model.weights.items())},
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"
