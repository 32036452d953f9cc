"""The labeled prompt set of issue 14 (bench/data/intent-labeled.jsonl): its size, labels,
split, and how hard it is for the keyword routes, checked with the project's own matcher against
the default config."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, load_config
from hybrid_router.core.matching import tokenize
from hybrid_router.core.routing import NO_MATCH, keyword_evidence
from hybrid_router.core.table import RoutingTable

DATA = Path(__file__).resolve().parents[1] / "bench" / "data" / "intent-labeled.jsonl"
PREMIUM = ("security", "critical", "web-search")


@cache
def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]


@cache
def table() -> RoutingTable:
    return routing_table(load_config(default_config_path()).config)


def keyword_routes(prompt: str) -> set[str]:
    tokens = tokenize(prompt)
    return {
        route.name
        for route in table().routes
        if keyword_evidence(route, prompt, tokens) is not NO_MATCH
    }


def test_size_labels_and_split() -> None:
    names = {route.name for route in table().routes} | {table().default_route.name}
    assert len(rows()) >= 400
    assert {row["route"] for row in rows()} == names
    assert {row["split"] for row in rows()} == {"build", "heldout"}
    prompts = [row["prompt"] for row in rows()]
    assert len(set(prompts)) == len(prompts)
    held = Counter(row["route"] for row in rows() if row["split"] == "heldout")
    for name in PREMIUM:
        assert held[name] >= 30, name
    # Two held-out sets: the first, written with the set, and a fresh one written afterwards,
    # each large enough to measure premium recall on its own.
    sets = Counter((row["set"], row["route"]) for row in rows() if row["split"] == "heldout")
    assert {written for written, _ in sets} == {"first", "fresh"}
    for written in ("first", "fresh"):
        for name in PREMIUM:
            assert sets[written, name] >= 30, (written, name)


def test_premium_prompts_mostly_without_their_keywords() -> None:
    for name in PREMIUM:
        labeled = [row["prompt"] for row in rows() if row["route"] == name]
        without = [prompt for prompt in labeled if name not in keyword_routes(prompt)]
        assert len(without) >= 0.4 * len(labeled), name


def test_near_misses() -> None:
    """Prompts that carry another route's keywords: at least 100, and among them prompts of a
    non-premium route with a premium route's words."""
    near = [row for row in rows() if keyword_routes(row["prompt"]) - {row["route"]}]
    assert len(near) >= 100
    premium_words = [
        row
        for row in near
        if row["route"] not in PREMIUM and keyword_routes(row["prompt"]) & set(PREMIUM)
    ]
    assert len(premium_words) >= 25


def test_shapes() -> None:
    prompts = [row["prompt"] for row in rows()]
    assert sum("Traceback" in p or "Error" in p or "ERROR" in p for p in prompts) >= 6  # errors
    assert sum("```" in p for p in prompts) >= 4  # code blocks
    assert sum("/" in p and "." in p for p in prompts) >= 35  # file paths
    assert sum("\n" in p for p in prompts) >= 10  # several lines
