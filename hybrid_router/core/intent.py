"""The second routing signal: a small linear model that reads a prompt's intent, not its keywords.

Keywords miss intent ("can tenant A read tenant B's invoices by changing the id?" names no
security word) and misfire on mentions ("add a password field" is not security work). This
model scores a prompt over word and phrase features (the tokens of `matching.tokenize`, their
adjacent pairs, word stems and a length bucket) with one weight vector per route, and turns the
scores into probabilities (softmax). It votes for the route with the highest probability x cost
(premium routes cost more: a close call goes premium); the vote is decisive when that
probability reaches the model's threshold, unsure otherwise. `decide` (core/routing.py) lets a
decisive vote choose the route in either direction; an unsure one lets a premium route named by
either signal win, and the keyword routes decide after that.

The weights are data: `settings-templates/intent-model.json`, trained on the build part of
`bench/data/intent-labeled.jsonl` (`bench/train_intent.py`), shipped in the wheel. A user adds
labeled examples in `<home>/intent-examples.jsonl` (one JSON object a line: {"prompt": ...,
"route": ...}); the model is then tuned on them (intent_train.tune) and the result cached in
the home, rebuilt when either file changes. Stdlib only, and cheap to load: the prompt hook, a
fresh process per prompt, reads the cache file's header and then only the weights of the
prompt's own features (intent_model.FileWeights).
"""

from __future__ import annotations

import os
import sys

from .. import __version__
from . import home
from .intent_model import (
    MODEL_FORMAT,
    SOURCE,
    IntentModel,
    features,
    float32_copy,
    read_cache,
    write_cache,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .routing import IntentVote

__all__ = ["MODEL_FORMAT", "SOURCE", "IntentModel", "LiveIntent", "features", "load_model"]

MODEL_FILENAME = "intent-model.json"
EXAMPLES_FILENAME = "intent-examples.jsonl"
CACHE_FILENAME = "intent-model.cache"


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
    """The model in effect, from the home's cache file when it is current (its header only:
    the weights are read as prompts need them), else built and cached. None when the shipped
    weights are missing or broken: routing then runs on the keyword routes alone."""
    try:
        key = _key(environ)
    except OSError:
        return None
    cache_file = os.path.join(home.home_path(environ), "cache", CACHE_FILENAME)
    try:
        cached = read_cache(cache_file, key)
        if cached is not None:
            return cached
    except (OSError, EOFError, ValueError, TypeError):
        pass  # no cache yet, or a stale, foreign or broken one: rebuilt below
    try:
        built = build_model(environ)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        write_cache(cache_file, key, built)
        # Through the cache even when just built: every process scores with the same numbers.
        found = read_cache(cache_file, key)
        if found is not None:
            return found
    except (OSError, EOFError, ValueError, TypeError):
        pass  # a read-only home only costs speed
    return float32_copy(built)


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
