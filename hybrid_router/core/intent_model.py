"""The intent model itself: features of a prompt and a linear scorer over them (see intent.py).

Stdlib only, and imported by the prompt hook: no `typing`, no `re`, and on the scoring path no
`array` or `bisect` (each costs a cold process a C-extension load).
"""

from __future__ import annotations

import math
import os

from .matching import tokenize
from .routing import IntentVote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MODEL_FORMAT = 3  # 3: a cache file read on demand (FileWeights)
_pread = getattr(os, "pread", None)
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


class MemoryWeights:
    """Feature -> one weight per route, in memory: a model being trained or read from JSON."""

    __slots__ = ("rows",)

    def __init__(self, rows: dict[str, tuple[float, ...]]) -> None:
        self.rows = rows

    def lookup(self, features: list[str]) -> list[tuple[str, tuple[float, ...]]]:
        rows = self.rows
        # In sorted order, as FileWeights finds them: the same sums, to the last bit.
        return [(feature, rows[feature]) for feature in sorted(features) if feature in rows]

    def items(self) -> list[tuple[str, tuple[float, ...]]]:
        return list(self.rows.items())


class FileWeights:
    """The weights in the home's cache file (see `write_cache`), read on demand.

    The prompt hook, a fresh process per prompt, cannot afford to read the whole model (tens of
    thousands of features: megabytes, several milliseconds of a cold process's reads and page
    faults). The features are sorted into blocks of BLOCK; the header holds each block's first
    feature, so a lookup reads one block of feature names and one row of weights: a prompt's
    few dozen features cost a few dozen small reads, whatever the model's size."""

    __slots__ = ("_blocks", "_count", "_fd", "_firsts", "_offsets", "_weights_at", "width")

    def __init__(
        self,
        fd: int,
        width: int,
        count: int,
        firsts: list[str],
        offsets: Any,
        weights_at: int,
    ) -> None:
        self._fd = fd  # kept open: a cache replaced meanwhile stays whole for this reader
        self.width = width  # weights per row (one per route)
        self._count = count
        self._firsts = firsts
        self._offsets = offsets  # where each block starts, and where the last one ends
        self._weights_at = weights_at
        self._blocks: dict[int, bytes] = {}

    def _read(self, at: int, size: int) -> bytes:
        data: bytes
        if _pread is not None:
            data = _pread(self._fd, size, at)
        else:  # no pread (Windows): seek, then read
            os.lseek(self._fd, at, os.SEEK_SET)
            data = os.read(self._fd, size)
        if len(data) != size:
            raise ValueError("intent model cache is truncated")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()

    def _block(self, number: int) -> bytes:
        """Block `number`'s names as bytes, framed by newlines: a name is found with one
        `find` (no decoding or splitting of the block's other names)."""
        found = self._blocks.get(number)
        if found is None:
            if len(self._blocks) >= 256:
                self._blocks.clear()
            start, end = self._offsets[number], self._offsets[number + 1]
            found = self._blocks[number] = b"\n" + self._read(start, end - start) + b"\n"
        return found

    def _row(self, number: int) -> tuple[float, ...]:
        size = 4 * self.width
        return tuple(memoryview(self._read(self._weights_at + number * size, size)).cast("f"))

    def _find(self, feature: str) -> int | None:
        firsts = self._firsts
        low, high = 0, len(firsts)  # the last block whose first name is <= feature
        while low < high:
            middle = (low + high) // 2
            if firsts[middle] <= feature:
                low = middle + 1
            else:
                high = middle
        if low == 0:
            return None
        block = self._block(low - 1)
        at = block.find(b"\n" + feature.encode(_ENCODING, _ERRORS) + b"\n")
        if at < 0:
            return None
        return (low - 1) * BLOCK + block.count(b"\n", 0, at)

    def lookup(self, features: list[str]) -> list[tuple[str, tuple[float, ...]]]:
        found = []
        for feature in sorted(features):  # in order: a block's features come together
            number = self._find(feature)
            if number is not None:
                found.append((feature, self._row(number)))
        return found

    def items(self) -> list[tuple[str, tuple[float, ...]]]:
        """Every feature with its row (a whole read: training and inspection, not scoring)."""
        names = [
            name
            for number in range(len(self._firsts))
            for name in self._block(number)[1:-1].decode(_ENCODING, _ERRORS).split("\n")
        ]
        values = memoryview(self._read(self._weights_at, 4 * self.width * self._count)).cast("f")
        width = self.width
        return [
            (name, tuple(values[row * width : row * width + width]))
            for row, name in enumerate(names)
        ]


CACHE_MAGIC = b"HRIM"
BLOCK = 128  # features per block: one read of about 1.5 KB of names per lookup
# A prompt decoded from JSON may hold a lone surrogate ("\ud800"): its features must encode.
_ENCODING, _ERRORS = "utf-8", "surrogatepass"


def write_cache(path: str, key: Any, model: IntentModel) -> None:
    """`model` as the cache file FileWeights reads: a header (CACHE_MAGIC, its length, then
    `marshal` of the key, the model's small parts and the block index), the sorted feature
    names in blocks, and the weight rows (float32) in the same order. Written to a temporary
    name and moved into place, so a reader never sees half a file."""
    import array
    import marshal

    rows = sorted(model.weights.items())
    width = len(model.classes)
    blocks = [
        "\n".join(name for name, _ in rows[start : start + BLOCK]).encode(_ENCODING, _ERRORS)
        for start in range(0, len(rows), BLOCK)
    ]
    firsts = [rows[start][0] for start in range(0, len(rows), BLOCK)]
    sizes = [len(block) for block in blocks]
    weights = array.array("f", [w for _, row in rows for w in row])

    def header(body_at: int) -> bytes:
        offsets = array.array("Q", [body_at])
        for size in sizes:
            offsets.append(offsets[-1] + size)
        small = (MODEL_FORMAT, model.classes, model.bias, model.threshold, model.costs)
        return marshal.dumps((key, small, width, len(rows), firsts, offsets.tobytes()))

    # The header holds the offsets, which depend on the header's own length: measure it with
    # placeholder offsets of the same width ("Q" is 8 bytes whatever the value), then write.
    length = len(header(0))
    body_at = len(CACHE_MAGIC) + 4 + length
    head = header(body_at)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as handle:
            handle.write(CACHE_MAGIC + len(head).to_bytes(4, "little") + head)
            for block in blocks:
                handle.write(block)
            handle.write(weights.tobytes())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)  # a full disk leaves no half-written file behind
        raise


def float32_copy(model: IntentModel) -> IntentModel:
    """`model` with its weights as the cache stores them (float32), for a process that cannot
    write the cache: it then scores with the same numbers as the processes that read it."""
    import array

    rows = {
        feature: tuple(array.array("f", row).tolist()) for feature, row in model.weights.items()
    }
    return IntentModel(model.classes, model.bias, rows, model.threshold, model.costs)


def read_cache(path: str, key: Any) -> IntentModel | None:
    """The model in the cache file at `path` when it was written for `key`, else None."""
    import marshal

    # A raw descriptor, not a file object: no `array`, `io` buffering or ResourceWarning on
    # the prompt hook's path (importing `array` alone costs a cold process up to a few ms).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        start = os.read(fd, 4096)
        if start[:4] != CACHE_MAGIC:
            raise ValueError("not an intent model cache")
        length = int.from_bytes(start[4:8], "little")
        head = start[8 : 8 + length]
        if len(head) < length:
            head += os.read(fd, length - len(head))
        cached_key, small, width, count, firsts, offsets_data = marshal.loads(head)
        if cached_key != key:
            os.close(fd)
            return None
        version, classes, bias, threshold, costs = small
        if version != MODEL_FORMAT:
            raise ValueError(f"intent model format {version}, expected {MODEL_FORMAT}")
        offsets = memoryview(offsets_data).cast("Q")
        weights_at = offsets[-1]
        if os.fstat(fd).st_size != weights_at + 4 * width * count:
            raise ValueError("intent model cache is truncated")
    except BaseException:
        os.close(fd)
        raise
    weights = FileWeights(fd, width, count, firsts, offsets, weights_at)
    return IntentModel(tuple(classes), tuple(bias), weights, threshold, tuple(costs))


class IntentModel:
    """Weights per route, the threshold a decisive vote's probability must reach, and the
    routes' costs. The weights live in memory (training, the shipped JSON) or in the home's
    cache file, read on demand (FileWeights)."""

    __slots__ = ("_votes", "bias", "classes", "costs", "store", "threshold")

    def __init__(
        self,
        classes: tuple[str, ...],
        bias: tuple[float, ...],
        weights: dict[str, tuple[float, ...]] | MemoryWeights | FileWeights,
        threshold: float,
        costs: tuple[float, ...] = (),
    ) -> None:
        self.classes = classes
        self.bias = bias
        self.store = MemoryWeights(weights) if isinstance(weights, dict) else weights
        self.threshold = threshold
        # What missing a route costs, relative to the others: the vote goes to the route with
        # the highest probability x cost, so a premium route (a miss sends work a local model
        # cannot do) wins a close call.
        self.costs = costs or (1.0,) * len(classes)
        self._votes: dict[str, IntentVote] = {}  # recent prompts: a turn repeats its text

    @property
    def weights(self) -> dict[str, tuple[float, ...]]:
        """Feature -> one weight per route (training and the JSON file; a whole read)."""
        return dict(self.store.items())

    def scores(self, text: str) -> tuple[list[tuple[str, tuple[float, ...]]], list[float], float]:
        """The prompt's features the model knows (with their rows), each route's score, and
        the scale applied to every feature's weight (1/sqrt of their number)."""
        found = self.store.lookup(features(text))
        scale = 1.0 / math.sqrt(len(found) or 1)
        scores = list(self.bias)
        count = len(scores)
        for _, row in found:
            for k in range(count):
                scores[k] += row[k] * scale
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

    def vote(self, text: str) -> IntentVote:
        """The vote on `text` (see vote_on), remembered for the prompt's next requests."""
        found = self._votes.get(text)
        if found is None:
            found = self.vote_on(self.probabilities(text))
            if len(self._votes) >= 256:
                self._votes.clear()
            self._votes[text] = found
        return found

    __call__ = vote

    def vote_on(self, ranked: list[tuple[str, float]]) -> IntentVote:
        """The route with the highest probability x cost, with its probability; decisive when
        that reaches the threshold (it then decides the route), unsure otherwise (see
        core/routing.decide)."""
        route, probability = self.choice(ranked)
        return IntentVote(route, probability, SOURCE, probability >= self.threshold)

    def contributions(self, text: str, route: str, limit: int = 6) -> list[tuple[str, float]]:
        """The features that pushed `text` toward `route` most (for `route --explain`)."""
        k = self.classes.index(route)
        found, _, scale = self.scores(text)
        pushes = [(feature, row[k] * scale) for feature, row in found]
        pushes.sort(key=lambda pair: -pair[1])
        return [pair for pair in pushes[:limit] if pair[1] > 0]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IntentModel:
        weights = {feature: tuple(row) for feature, row in data["weights"].items()}
        classes = tuple(data["classes"])
        costs = tuple(float(data.get("costs", {}).get(name, 1.0)) for name in classes)
        return cls(classes, tuple(data["bias"]), weights, float(data["threshold"]), costs)
