"""The second routing signal: a small linear model that reads a prompt's intent, not its keywords.

Keywords miss intent ("can tenant A read tenant B's invoices by changing the id?" names no
security word) and misfire on mentions ("add a password field" is not security work). This
model scores a prompt over word and phrase features (the tokens of `matching.tokenize`, their
adjacent pairs, and a length bucket) with one weight vector per route, and turns the scores into
probabilities (softmax). It votes for its top route when that route's probability reaches the
model's threshold, and abstains otherwise; `decide` (core/routing.py) lets a vote decide the
route, in either direction, and the keyword routes decide when it abstains.

The weights are data: `settings-templates/intent-model.json`, trained on the build part of
`bench/data/intent-labeled.jsonl` (`python -m hybrid_router.core.intent_train`), shipped in the
wheel. A user adds labeled examples in `<home>/intent-examples.jsonl` (one JSON object a line:
{"prompt": ..., "route": ...}); the model is then tuned on them (intent_train.tune) and the
result cached in the home, rebuilt when either file changes. Stdlib only, and cheap to load:
the prompt hook, a fresh process per prompt, reads the model from a `marshal` cache.
"""

from __future__ import annotations

import marshal
import math
import os
import sys

from .. import __version__
from . import home
from .matching import tokenize
from .routing import IntentVote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

MODEL_FILENAME = "intent-model.json"
EXAMPLES_FILENAME = "intent-examples.jsonl"
CACHE_FILENAME = "intent-model.marshal"
MODEL_FORMAT = 1
SOURCE = "learned"  # the reason reads "security: learned intent, confidence 0.91"
# A long prompt (a pasted log, a file) is read at its two ends, where people put the ask.
HEAD_CHARS = 3000
TAIL_CHARS = 3000
STEM = 5  # words longer than this also count by their first STEM letters


def features(text: str) -> list[str]:
    """The distinct features of `text`: tokens, adjacent token pairs, and a length bucket."""
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
        found[bucket] = None
    return list(found)


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
        weights: dict[str, tuple[float, ...]] | tuple[dict[str, int], Any],
        threshold: float,
        costs: tuple[float, ...] = (),
    ) -> None:
        self.classes = classes
        self.bias = bias
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
        blob = self.values.tobytes() if isinstance(self.values, memoryview) else _packed(self.values)
        return (MODEL_FORMAT, self.classes, self.bias, self.index, blob, self.threshold, self.costs)

    @classmethod
    def from_data(cls, data: tuple[Any, ...]) -> IntentModel:
        version, classes, bias, index, blob, threshold, costs = data
        if version != MODEL_FORMAT:
            raise ValueError(f"intent model format {version}, expected {MODEL_FORMAT}")
        values = memoryview(blob).cast("f")
        return cls(tuple(classes), tuple(bias), (index, values), threshold, tuple(costs))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IntentModel:
        weights = {feature: tuple(row) for feature, row in data["weights"].items()}
        classes = tuple(data["classes"])
        costs = tuple(float(data.get("costs", {}).get(name, 1.0)) for name in classes)
        return cls(classes, tuple(data["bias"]), weights, float(data["threshold"]), costs)


def _packed(values: list[float]) -> bytes:
    import array

    return array.array("f", values).tobytes()


def model_path() -> str:
    """The shipped weights (settings-templates/, inside the wheel)."""
    return os.path.join(home.templates_path(), MODEL_FILENAME)


def examples_path(environ: Mapping[str, str] | None = None) -> str:
    """The user's own labeled examples: `<home>/intent-examples.jsonl`."""
    return os.path.join(home.home_path(environ), EXAMPLES_FILENAME)


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_size, found.st_mtime_ns)


def _key(environ: Mapping[str, str] | None) -> tuple[Any, ...]:
    shipped = model_path()
    return (
        __version__,
        sys.version_info[:3],
        os.path.abspath(shipped),
        _stamp(shipped),
        _stamp(examples_path(environ)),
    )


def build_model(environ: Mapping[str, str] | None = None) -> IntentModel:
    """The shipped model, tuned on the user's examples when the home has any (the slow path)."""
    import json

    with open(model_path(), encoding="utf-8") as handle:
        model = IntentModel.from_json(json.load(handle))
    examples = examples_path(environ)
    if os.path.exists(examples):
        from .intent_train import read_examples, tune

        model = tune(model, read_examples(examples, model.classes))
    return model


def load_model(environ: Mapping[str, str] | None = None) -> IntentModel | None:
    """The model in effect, from the home's `marshal` cache when it is current (about a
    millisecond), else built and cached. None when the shipped weights are missing or broken:
    routing then runs on the keyword routes alone."""
    try:
        key = _key(environ)
    except OSError:
        return None
    cache_file = os.path.join(home.home_path(environ), "cache", CACHE_FILENAME)
    try:
        with open(cache_file, "rb") as handle:
            cached_key, data = marshal.loads(handle.read())  # `load` on a file is 3x slower
        if cached_key == key:
            return IntentModel.from_data(data)
    except (OSError, EOFError, ValueError, TypeError):
        pass  # no cache yet, or a stale or foreign one: rebuilt below
    try:
        model = build_model(environ)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        temporary = f"{cache_file}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            marshal.dump((key, model.to_data()), handle)
        os.replace(temporary, cache_file)
    except OSError:
        pass  # a read-only home only costs speed
    return model


class LiveIntent:
    """The intent signal of a long-lived process (the proxy, the MCP server): the current model,
    looked at again (two `stat` calls) at most every `recheck_seconds`, so an edited examples
    file takes effect without a restart, as it does for the next prompt hook."""

    __slots__ = ("_checked", "_environ", "_key", "_model", "recheck_seconds")

    def __init__(self, environ: Mapping[str, str] | None = None, recheck_seconds: float = 2.0):
        self._environ = environ
        self.recheck_seconds = recheck_seconds
        self._model = load_model(environ)
        self._key = self._current_key()
        self._checked = _now()

    def _current_key(self) -> tuple[Any, ...] | None:
        try:
            return _key(self._environ)
        except OSError:
            return None

    @property
    def model(self) -> IntentModel | None:
        now = _now()
        if now - self._checked >= self.recheck_seconds:
            self._checked = now
            key = self._current_key()
            if key != self._key:
                self._key = key
                self._model = load_model(self._environ)
        return self._model

    def __call__(self, text: str) -> IntentVote | None:
        model = self.model
        return model.vote(text) if model is not None else None


def _now() -> float:
    import time

    return time.monotonic()
