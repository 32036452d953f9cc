"""The intent model itself: features of a prompt and a linear scorer over them (see intent.py).

Stdlib only, and imported by the prompt hook: no `typing`, no `re`.
"""

from __future__ import annotations

import math

from .matching import tokenize
from .routing import IntentVote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MODEL_FORMAT = 2  # 2: the feature index as one sorted string (FeatureIndex)
SOURCE = "learned"  # the reason reads "security: learned intent, confidence 0.91"
# A long prompt (a pasted log, a file) is read at its two ends, where people put the ask.
HEAD_CHARS = 3000
TAIL_CHARS = 3000
STEM = 5  # words longer than this also count by their first STEM letters


def features(text: str) -> list[str]:
    """The distinct features of `text`: tokens, token pairs, word stems, a length bucket."""
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        text = text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]
    tokens = tokenize(text)
    words = sum(1 for token in tokens if token[0].isalnum())
    bucket = "#len:1" if words <= 1 else "#len:3" if words <= 3 else "#len:8" if words <= 8 else ""
    found = dict.fromkeys(tokens)
    previous = "^"
    for token in tokens:
        found[previous + " " + token] = None
        if len(token) > STEM:
            found[token[:STEM] + "~"] = None  # a stem: "invoices", "invoicing" -> "invoi~"
        previous = token
    if bucket:
        found[bucket] = None  # how long the prompt is: "ok", "yes go ahead" are replies
    return list(found)


class FeatureIndex:
    """Feature -> row number, over one string of the sorted features, "\n" after each, and
    the offset where each starts (unsigned ints in one bytes object).

    The prompt hook loads the model from a `marshal` cache in every process: a dict of the
    model's thousands of features would be thousands of objects to build (about 2 ms, most of
    the model's load); one string and one bytes object load in a fraction of that. A lookup is
    a binary search over the string (a prompt has tens of features)."""

    __slots__ = ("_starts", "_text")

    def __init__(self, text: str, starts: Any) -> None:
        self._text = text
        self._starts = starts  # memoryview of "I": len(features) + 1 offsets

    @classmethod
    def build(cls, features: list[str]) -> FeatureIndex:
        """For features already sorted (their row numbers are their positions)."""
        import array

        offsets = array.array("I", [0])
        for feature in features:
            offsets.append(offsets[-1] + len(feature) + 1)
        return cls("".join(f"{feature}\n" for feature in features), memoryview(offsets))

    def to_data(self) -> tuple[str, bytes]:
        return self._text, self._starts.tobytes()

    @classmethod
    def from_data(cls, data: tuple[str, bytes]) -> FeatureIndex:
        text, starts = data
        return cls(text, memoryview(starts).cast("I"))

    def get(self, feature: str) -> int | None:
        starts, text = self._starts, self._text
        low, high = 0, len(starts) - 1
        while low < high:
            middle = (low + high) // 2
            found = text[starts[middle] : starts[middle + 1] - 1]
            if found < feature:
                low = middle + 1
            elif found > feature:
                high = middle
            else:
                return middle
        return None

    def __contains__(self, feature: object) -> bool:
        return isinstance(feature, str) and self.get(feature) is not None

    def __getitem__(self, feature: str) -> int:
        row = self.get(feature)
        if row is None:
            raise KeyError(feature)
        return row

    def items(self) -> list[tuple[str, int]]:
        text, starts = self._text, self._starts
        return [(text[starts[i] : starts[i + 1] - 1], i) for i in range(len(starts) - 1)]


class IntentModel:
    """Weights per route, the threshold a vote's probability must reach, and the routes' costs.

    The weights are one flat run of floats (a row of one weight per route for each feature,
    found through `index`): in the `marshal` cache that is one bytes object, which loads in about
    a millisecond where a dict of thousands of float tuples takes tens."""

    __slots__ = ("_votes", "bias", "classes", "costs", "index", "threshold", "values")

    def __init__(
        self,
        classes: tuple[str, ...],
        bias: tuple[float, ...],
        weights: dict[str, tuple[float, ...]] | tuple[dict[str, int] | FeatureIndex, Any],
        threshold: float,
        costs: tuple[float, ...] = (),
    ) -> None:
        self.classes = classes
        self.bias = bias
        self.index: dict[str, int] | FeatureIndex
        if isinstance(weights, dict):
            self.index = {feature: row for row, feature in enumerate(weights)}
            self.values: Any = [w for row in weights.values() for w in row]
        else:
            self.index, self.values = weights  # feature -> row number; flat floats
        self.threshold = threshold
        # What missing a route costs, relative to the others: the vote goes to the route with
        # the highest probability x cost, so a premium route (a miss sends work a local model
        # cannot do) wins a close call.
        self.costs = costs or (1.0,) * len(classes)
        self._votes: dict[str, IntentVote | None] = {}  # recent prompts: a turn repeats its text

    @property
    def weights(self) -> dict[str, tuple[float, ...]]:
        """Feature -> one weight per route (built on demand: training and the JSON file)."""
        count = len(self.classes)
        values = self.values
        return {
            feature: tuple(values[row * count : row * count + count])
            for feature, row in self.index.items()
        }

    def scores(self, text: str) -> tuple[list[str], list[float], float]:
        found = [f for f in features(text) if f in self.index]
        scale = 1.0 / math.sqrt(len(found) or 1)
        scores = list(self.bias)
        count = len(scores)
        values = self.values
        index = self.index
        for feature in found:
            start = index[feature] * count
            for k in range(count):
                scores[k] += values[start + k] * scale
        return found, scores, scale

    def probabilities(self, text: str) -> list[tuple[str, float]]:
        """Every route with its probability, highest first."""
        _, scores, _ = self.scores(text)
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        total = sum(exps)
        ranked = [(name, value / total) for name, value in zip(self.classes, exps, strict=True)]
        ranked.sort(key=lambda pair: -pair[1])
        return ranked

    def choice(self, ranked: list[tuple[str, float]]) -> tuple[str, float]:
        """The route with the highest probability x cost, and its probability."""
        costs = dict(zip(self.classes, self.costs, strict=True))
        return max(ranked, key=lambda pair: pair[1] * costs[pair[0]])

    def vote(self, text: str) -> IntentVote | None:
        """The route with the highest probability x cost when its probability reaches the
        threshold; None (abstain, the keyword routes decide) otherwise."""
        if text in self._votes:
            return self._votes[text]
        route, probability = self.choice(self.probabilities(text))
        found = IntentVote(route, probability, SOURCE) if probability >= self.threshold else None
        if len(self._votes) >= 256:
            self._votes.clear()
        self._votes[text] = found
        return found

    __call__ = vote

    def contributions(self, text: str, route: str, limit: int = 6) -> list[tuple[str, float]]:
        """The features that pushed `text` toward `route` most (for `route --explain`)."""
        k = self.classes.index(route)
        count = len(self.classes)
        found, _, scale = self.scores(text)
        pushes = [(f, self.values[self.index[f] * count + k] * scale) for f in found]
        pushes.sort(key=lambda pair: -pair[1])
        return [pair for pair in pushes[:limit] if pair[1] > 0]

    def to_data(self) -> tuple[Any, ...]:
        """The cached form: the features sorted into one FeatureIndex string, the weight rows
        in that order as one float32 blob."""
        count = len(self.classes)
        rows = sorted(self.index.items())
        values = self.values
        ordered = [values[row * count + k] for _, row in rows for k in range(count)]
        index = FeatureIndex.build([feature for feature, _ in rows])
        return (
            MODEL_FORMAT,
            self.classes,
            self.bias,
            index.to_data(),
            _packed(ordered),
            self.threshold,
            self.costs,
        )

    @classmethod
    def from_data(cls, data: tuple[Any, ...]) -> IntentModel:
        version, classes, bias, index, blob, threshold, costs = data
        if version != MODEL_FORMAT:
            raise ValueError(f"intent model format {version}, expected {MODEL_FORMAT}")
        values = memoryview(blob).cast("f")
        features = FeatureIndex.from_data(index)
        return cls(tuple(classes), tuple(bias), (features, values), threshold, tuple(costs))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IntentModel:
        weights = {feature: tuple(row) for feature, row in data["weights"].items()}
        classes = tuple(data["classes"])
        costs = tuple(float(data.get("costs", {}).get(name, 1.0)) for name in classes)
        return cls(classes, tuple(data["bias"]), weights, float(data["threshold"]), costs)


def _packed(values: list[float]) -> bytes:
    import array

    return array.array("f", values).tobytes()
