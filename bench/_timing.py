"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path


def timed_ms(function: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock milliseconds of `repeat` calls of `function`."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def installed_script() -> str:
    """The `hybrid-router` console script of the interpreter running the benchmark."""
    script = shutil.which("hybrid-router", path=str(Path(sys.executable).parent))
    if script is None:
        sys.exit("hybrid-router is not installed next to this Python (run `make install`)")
    return script
