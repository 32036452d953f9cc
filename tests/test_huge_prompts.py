"""One request cannot stall the others (issue 13, point 3): routing reads the head and the tail
of a huge prompt (the size estimate still counts every character), so a 20 MB prompt delays a
concurrent health check by at most 100 ms, and the prompt hook answers a 50 MB prompt within a
second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from proxy_server import config_data

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import parse_config
from hybrid_router.core.routing import ROUTED_HEAD_CHARS, ROUTED_TAIL_CHARS, decide, routed_part
from hybrid_router.core.signals import signals_from_prompt, signals_from_request, strip_injected
from hybrid_router.core.table import RoutingTable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

FILLER = "the quick brown fox jumps over the lazy dog\n"


def _table() -> RoutingTable:
    return routing_table(parse_config(config_data(), "router-config.json"))


def test_routing_reads_the_head_and_the_tail_and_the_estimate_counts_everything() -> None:
    middle = FILLER * 50_000  # 2.2 MB of text with no keyword
    security = "review this login handler for sql injection"
    assert decide(signals_from_prompt(security), _table()).rule == "security"
    for prompt, routed in (
        (security + "\n" + middle, True),  # the ask first
        (middle + security, True),  # the ask last
        (middle + security + middle, False),  # the ask in the middle: not read
    ):
        signals = signals_from_prompt(prompt)
        assert signals.estimated_tokens >= len(prompt) // 4  # every character counted
        assert (decide(signals, _table()).rule == "security") is routed
    part = routed_part(middle)
    assert len(part) == ROUTED_HEAD_CHARS + ROUTED_TAIL_CHARS + 1


def test_routing_a_huge_prompt_costs_what_a_small_one_does() -> None:
    table = _table()
    small = FILLER * 400  # 18 KB
    huge = FILLER * 500_000  # 22 MB
    timings = []
    for prompt in (small + "why?", huge + "why not?"):
        message = {"role": "user", "content": prompt}
        body = {"model": "claude-opus-4-8", "max_tokens": 10, "messages": [message]}
        started = time.perf_counter()
        decide(signals_from_request(body), table)
        timings.append(time.perf_counter() - started)
    assert timings[1] < 0.1, timings


def test_injected_blocks_are_still_removed() -> None:
    text = "<system-reminder>noise</system-reminder>fix the bug<system-reminder>x</system-reminder>"
    assert strip_injected(text) == "fix the bug"
    assert strip_injected("a <b> c") == "a <b> c"
    assert strip_injected("<system-reminder>never closed") == "<system-reminder>never closed"


def test_the_prompt_hook_answers_a_50_mb_prompt_within_a_second(tmp_path: Path) -> None:
    prompt = "why does the login fail?\n" + "2026-01-01 worker <ok> handled in 12 ms\n" * 1_250_000
    payload = json.dumps({"session_id": "s1", "prompt": prompt, "cwd": str(tmp_path)}).encode()
    assert len(payload) > 50_000_000
    env = {
        **os.environ,
        "HYBRID_ROUTER_HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "CLAUDE_PROJECT_DIR": str(tmp_path),
    }
    script = str(Path(sys.executable).parent / "hybrid-router")
    subprocess.run([script, "hook", "UserPromptSubmit"], input=b"{}", env=env, check=True)
    took = []
    for _ in range(2):  # the better of two: the machine is shared
        started = time.monotonic()
        done = subprocess.run(
            [script, "hook", "UserPromptSubmit"],
            input=payload,
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
        took.append(time.monotonic() - started)
        assert done.returncode == 0 and not done.stderr, done.stderr
    assert min(took) < 1.0, took


def test_a_20_mb_prompt_delays_a_health_check_by_at_most_100_ms() -> None:
    import faults  # type: ignore[import-not-found, unused-ignore]  # bench/ is put on sys.path above

    delays = []
    for _ in range(3):  # the best of three: the machine is shared
        report = faults.huge_prompt_stall(20)
        assert report.status == 400  # "prompt is too long": no window takes 5.7M tokens
        delays.append(report.busy_max_ms)
        if report.busy_max_ms <= 100:
            break
    assert min(delays) <= 100, delays
