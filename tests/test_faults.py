"""A scaled-down bench/faults.py: the real proxy (a subprocess) under random upstream faults and
hostile bodies. Every request is answered with a message or an Anthropic-shaped error (never a
hang, never a malformed response), every answered request has exactly one log row, and no
malformed body gets a 5xx."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import faults


def test_random_faults_and_hostile_bodies() -> None:
    report = faults.run(requests=400, hostile=300, concurrency=32, seed=7)
    assert report.proxy_alive
    assert report.requests == 400
    assert report.answered == report.requests, report.outcomes
    assert report.outcomes["answered"] > 200  # most requests find a working link
    assert (
        sum(n for o, n in report.outcomes.items() if o.startswith("error ")) > 0
    )  # and some exhaust the chain
    assert sum(report.rows.values()) == report.expected_rows, (report.rows, report.outcomes)
    assert report.rows["fallback"] > 0 and report.rows["error"] > 0
    assert sum(report.hostile.values()) == 300
    assert report.hostile_crashes == 0, report.hostile
    # Structurally malformed bodies are all refused by the proxy itself; only "wrong type
    # inside" (a wrong type deep in an otherwise valid body) may reach the upstream.
    strays = {
        what: n
        for what, n in report.hostile_bad.items()
        if not what.startswith("wrong type inside")
    }
    assert not strays, strays


def test_every_hostile_case_is_covered() -> None:
    cases = faults.hostile_bodies(random.Random(1))
    categories = {category for category, _, _ in cases}
    assert {
        "bad json",
        "bad utf-8",
        "not an object",
        "missing field",
        "wrong type",
        "huge field",
        "deep nesting",
    } <= categories


def test_sse_verdicts() -> None:
    ok = (
        b'event: message_start\ndata: {"type": "message_start"}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    )
    assert faults.sse_verdict(ok) == "ok"
    broken = (
        b'event: message_start\ndata: {"type": "message_start"}\n\n'
        b'event: error\ndata: {"type": "error", "error": {"type": "api_error", "message": "x"}}\n\n'
    )
    assert faults.sse_verdict(broken) == "error-event"
    assert faults.sse_verdict(
        b'event: message_start\ndata: {"type": "message_start"}\n\n'
    ).startswith("malformed")
    assert faults.sse_verdict(b"event: message_start\ndata: {trunc").startswith("malformed")
