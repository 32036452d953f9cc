"""Config regexes cannot hang the router (issue 13, point 4): patterns are matched by the `regex`
package with a time limit per text; `config check` refuses a pattern that backtracks on a short
text, naming the field; at run time a pattern that runs out of time (or cannot be compiled) is
skipped with one line on stderr, in the proxy and in the prompt hook alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import regex
from proxy_server import config_data, write_config
from test_proxy_support import CLAUDE, rig

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import ConfigError, parse_config, read_config_file
from hybrid_router.core import patterns
from hybrid_router.core.routing import decide
from hybrid_router.core.signals import signals_from_prompt

BACKTRACKS = "(a|aa)+$"  # exponential in `re` and in `regex`: refused by config check
ISSUE_EXAMPLE = "^(a+)+$"  # the issue's: it hung `re`; `regex` answers it at once
SLIPS_THROUGH = "(abc|ab|c)+$"  # passes config check's probes, backtracks on "abcabc...!"
SLOW_PROMPT = "abc" * 20 + "!"


def with_pattern(pattern: str) -> dict[str, Any]:
    data = config_data()
    route = {"name": "patterned", "conditions": {"patterns": [pattern]}, "target": {"tier": "fast"}}
    data["routes"].insert(0, route)
    return data


@pytest.fixture(autouse=True)
def fresh_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patterns, "_compiled", {})
    monkeypatch.setattr(patterns, "_warned", set())


def test_config_check_refuses_a_pattern_that_backtracks_naming_the_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, with_pattern(BACKTRACKS))
    with pytest.raises(ConfigError) as caught:
        read_config_file(path)
    message = str(caught.value)
    assert "routes[0].conditions.patterns[0]" in message and "backtracks" in message
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "hybrid-router"), "config", "check"],
        capture_output=True,
        text=True,
        env={**os.environ, "HYBRID_ROUTER_HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert cli.returncode != 0 and "routes[0].conditions.patterns[0]" in cli.stderr + cli.stdout


def test_config_check_refuses_a_pattern_that_does_not_compile() -> None:
    with pytest.raises(ConfigError, match=r"patterns\[0\] expected a regular expression"):
        parse_config(with_pattern("(unclosed"), "router-config.json")


def test_the_issues_pattern_no_longer_hangs() -> None:
    table = routing_table(parse_config(with_pattern(ISSUE_EXAMPLE), "router-config.json"))
    started = time.monotonic()
    decision = decide(signals_from_prompt("a" * 34 + "b"), table)
    assert time.monotonic() - started < 0.5
    assert decision.rule != "patterned"
    assert decide(signals_from_prompt("aaaa"), table).rule == "patterned"


def test_a_pattern_that_runs_out_of_time_is_skipped_with_one_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    table = routing_table(parse_config(with_pattern(SLIPS_THROUGH), "router-config.json"))
    started = time.monotonic()
    for _ in range(5):
        assert decide(signals_from_prompt(SLOW_PROMPT), table).rule != "patterned"
    assert time.monotonic() - started < 0.5  # one time limit (50 ms), then skipped
    warned = [line for line in capfd.readouterr().err.splitlines() if "routing pattern" in line]
    assert len(warned) == 1 and SLIPS_THROUGH in warned[0]


def test_a_pattern_that_does_not_compile_at_run_time_is_skipped(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # A table from an older cache, or a config the check never saw: skipped, not an error.
    table = routing_table(parse_config(with_pattern("patterned"), "router-config.json"))
    route = table.routes[0].replace(patterns=("(unclosed",))
    table = table.replace(routes=(route, *table.routes[1:]))
    assert decide(signals_from_prompt("hello"), table).rule != "patterned"
    assert decide(signals_from_prompt("hello again"), table).rule != "patterned"
    assert capfd.readouterr().err.count("routing pattern") == 1


def test_without_an_engine_patterns_are_skipped(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(patterns, "_engine", None)
    assert list(patterns.matches("a+", "aaa")) == []
    assert "no pattern engine" in capfd.readouterr().err
    monkeypatch.setattr(patterns, "_engine", lambda: regex)
    monkeypatch.setattr(patterns, "_compiled", {})
    assert [span for span, _ in patterns.matches("a+", "xaax")] == [(1, 3)]


def test_the_proxy_answers_while_a_pattern_runs_out_of_time(
    router_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with rig(router_home, config_data=with_pattern(SLIPS_THROUGH)) as r:
        for prompt in (SLOW_PROMPT, SLOW_PROMPT + " again"):
            message = {"role": "user", "content": prompt}
            body = {"model": CLAUDE, "max_tokens": 50, "messages": [message]}
            started = time.monotonic()
            answer = r.post(body)
            assert answer.status_code == 200, answer.text
            assert time.monotonic() - started < 2
        assert httpx.get(f"{r.url}/", timeout=2).status_code == 200
    assert capfd.readouterr().err.count("routing pattern") == 1


def test_the_prompt_hook_answers_while_a_pattern_runs_out_of_time(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_config(home, with_pattern(SLIPS_THROUGH))
    env = {
        **os.environ,
        "HYBRID_ROUTER_HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "CLAUDE_PROJECT_DIR": str(tmp_path),
    }
    script = str(Path(sys.executable).parent / "hybrid-router")
    payload = json.dumps({"session_id": "s1", "prompt": SLOW_PROMPT, "cwd": str(tmp_path)})
    subprocess.run([script, "hook", "UserPromptSubmit"], input=b"{}", env=env, check=True)  # cache
    started = time.monotonic()
    done = subprocess.run(
        [script, "hook", "UserPromptSubmit"],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert time.monotonic() - started < 1.5
    assert done.stderr.count("routing pattern") == 1, done.stderr
