"""The documented complexity heuristic, point by point, and examples a user would recognise.

Each point is checked in isolation (neutral filler words score nothing), so a test failing names
the rule that changed. 0-1 points is low, 2-3 medium, 4 or more high.
"""

from __future__ import annotations

import pytest

from hybrid_router.core.complexity import HIGH, LOW, MEDIUM, assess_complexity, complexity_score


def words(n: int) -> str:
    return " ".join(["word"] * n)


def fenced(lines: int) -> str:
    body = "".join(f"x{i}=0\n" for i in range(lines))  # one word a line
    return f"```python\n{body}```"


# --- length ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "points"),
    [(0, 0), (1, 0), (24, 0), (25, 1), (79, 1), (80, 2), (249, 2), (250, 3), (1000, 3)],
)
def test_length_bands(count: int, points: int) -> None:
    assert complexity_score(words(count)) == points


# --- steps -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("read the file then stop", 1),
        ("read the file, then stop, and after that rest", 1),  # 2 markers
        ("do it, then this, after that that, and finally the rest", 2),  # 3 markers
        ("then again then again then again", 1),  # the same marker counts once
        ("step one is enough", 1),  # step* is a marker
        ("also next", 1),
        ("also next afterwards", 2),
    ],
)
def test_sequencing_markers(text: str, points: int) -> None:
    assert complexity_score(text) == points


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("- one item", 1),
        ("- one\n- two", 1),
        ("- one\n* two\n• three", 2),
        ("1. one\n2) two\n3. three", 2),
        ("  - an indented item\n  - another", 1),
        ("a - b is not an item", 0),  # a dash inside a line is not a list item
        ("1.5 is a number, not an item", 0),
    ],
)
def test_list_items_count_as_steps(text: str, points: int) -> None:
    assert complexity_score(text) == points


def test_markers_and_list_items_add_up() -> None:
    assert complexity_score("- one\n- two\nthen check") == 2


# --- scope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "rename it across the entire codebase",
        "apply to all files",
        "in every module",
        "an end-to-end check",
        "everywhere",
        "a system-wide setting",
    ],
)
def test_whole_codebase_scope_is_one_point(text: str) -> None:
    assert complexity_score(text) == 1


def test_scope_counts_once() -> None:
    assert complexity_score("the entire codebase, all files, every module, everywhere") == 1


# --- hard topics -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("a race condition", 1),
        ("a race condition and a deadlock", 2),
        ("race condition, deadlock, migration, performance, security", 2),  # capped at 2
        ("optimize it", 1),  # optimi* takes endings
        ("a memory leak", 1),
        ("the thread pool", 0),  # thread alone is not thread safety
        ("a redesign of the protocol", 2),
    ],
)
def test_hard_topics_one_point_each_at_most_two(text: str, points: int) -> None:
    assert complexity_score(text) == points


# --- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("look at routing.py and signals.py", 0),
        ("look at routing.py, signals.py and hybrid_router/config.py", 1),
        ("look at routing.py, routing.py and routing.py", 0),  # the same file counts once
        ("edit src/app.ts, package.json and README.md", 1),
    ],
)
def test_three_or_more_distinct_files_is_one_point(text: str, points: int) -> None:
    assert complexity_score(text) == points


def test_eg_and_ie_are_not_file_names() -> None:
    text = "look at routing.py and signals.py, e.g. the timeout, i.e. the retry"
    assert complexity_score(text) == 0


def test_file_names_inside_a_code_block_do_not_count() -> None:
    text = "look at routing.py\n```\nimport a.py\nimport b.py\nimport c.py\n```"
    assert complexity_score(text) == 0


# --- code block ------------------------------------------------------------------------------


def test_a_code_block_of_30_lines_is_one_point() -> None:
    # Both texts have 25-79 words (1 point for length); only the 30-line block adds one more.
    assert complexity_score("why?\n" + fenced(29)) == 1
    assert complexity_score("why?\n" + fenced(30)) == 2


def test_an_unclosed_fence_is_not_a_code_block() -> None:
    assert complexity_score("why?\n" + fenced(40).removesuffix("```")) == 1  # length only


# --- simplicity ------------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["just", "quick", "simple", "small", "tiny", "one-line", "typo"])
def test_simplicity_markers_take_a_point_off(marker: str) -> None:
    hard = "a race condition and a deadlock"
    assert complexity_score(f"{hard} {marker}") == complexity_score(hard) - 1


def test_simplicity_counts_once() -> None:
    assert complexity_score("a race condition and a deadlock, just a quick small fix") == 1


def test_simplicity_turns_medium_into_low() -> None:
    text = "refactor the retry logic in client.py, then add tests"
    assert assess_complexity(text) == MEDIUM
    assert assess_complexity("just " + text) == LOW


# --- levels and recognisable examples --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score", "level"),
    [
        ("rename it", 0, LOW),
        ("fix the race condition", 1, LOW),
        ("fix the race condition and the deadlock", 2, MEDIUM),
        ("fix the race condition, then the deadlock", 3, MEDIUM),
        (
            "fix the race condition, then the deadlock, after that the migration, finally docs",
            4,
            HIGH,
        ),
    ],
)
def test_level_thresholds(text: str, score: int, level: str) -> None:
    assert complexity_score(text) == score
    assert assess_complexity(text) == level


def test_empty_text_is_low() -> None:
    assert complexity_score("") == 0
    assert assess_complexity("") == LOW


@pytest.mark.parametrize(
    "prompt",
    [
        "fix the typo in README.md",
        "rename get_cfg to get_config",
        "add a --json flag to the stats command",
        "where is the retry logic?",
        "thanks!",
    ],
)
def test_everyday_small_requests_are_low(prompt: str) -> None:
    assert assess_complexity(prompt) == LOW


@pytest.mark.parametrize(
    "prompt",
    [
        "refactor the retry logic in client.py to use exponential backoff, then add tests for it",
        "explain the caching design and the trade-offs we made",
        "update the import in routing.py, signals.py and config.py, then run the tests",
    ],
)
def test_focused_multi_part_work_is_medium(prompt: str) -> None:
    assert assess_complexity(prompt) == MEDIUM


@pytest.mark.parametrize(
    "prompt",
    [
        (
            "Migrate the orders service from REST polling to an event-driven design with "
            "at-least-once delivery across all services, then update every consumer, also add "
            "idempotency keys, and finally document the rollout plan"
        ),
        (
            "Plan the move to async I/O for the whole project:\n"
            "1. find the blocking calls\n"
            "2. replace them\n"
            "3. check throughput before and after"
        ),
        (
            "We see a race condition under load. Investigate the deadlock in worker/pool.py, "
            "worker/queue.py and api/handlers.py, then add a regression test"
        ),
    ],
)
def test_large_or_risky_work_is_high(prompt: str) -> None:
    assert assess_complexity(prompt) == HIGH


def test_simplicity_markers_never_push_the_score_below_zero():
    assert complexity_score("fix the typo in README.md") == 0
