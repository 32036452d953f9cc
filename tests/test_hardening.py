"""Hostile bodies, on every endpoint (issue 13, point 2): each is answered with an
Anthropic-shaped 4xx and its row, never a 5xx — except a body Anthropic itself would accept: a
deeply nested JSON *string* in `metadata.user_id` is just a string, so the request is answered
and no session id is taken from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_proxy_support import CLAUDE, CODE_PROMPT, assert_anthropic_error, rig

DEEP = 1000  # under orjson's 1,024-level parse limit, over Python's recursion limit
VALID = {"model": CLAUDE, "max_tokens": 64, "messages": [{"role": "user", "content": CODE_PROMPT}]}


def _nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _deep_user_id() -> bytes:
    user_id = json.dumps(_nested_object(DEEP))  # a JSON string that holds deep JSON
    return (
        json.dumps(VALID)[:-1].encode() + b', "metadata": {"user_id": ' + user_id.encode() + b"}}"
    )


def _huge_integer(where: str) -> bytes:
    digits = "9" * 5000  # more than the 4,300 digits Python converts by default
    if where == "max_tokens":
        return (
            b'{"model": "%s", "max_tokens": %s, "messages": [{"role": "user", "content": "hi"}]}'
            % (CLAUDE.encode(), digits.encode())
        )
    return json.dumps(VALID)[:-1].encode() + b', "temperature": ' + digits.encode() + b"}"


def _deep_tool_schema() -> bytes:
    schema = '{"type": "object", "properties": {"x": ' + _nested_object(DEEP) + "}}"
    tool = '{"name": "Deep", "description": "d", "input_schema": ' + schema + "}"
    return json.dumps(VALID)[:-1].encode() + b', "tools": [' + tool.encode() + b"]}"


def _deep_tool_use() -> bytes:
    turn = (
        '[{"role": "user", "content": "run it"}, {"role": "assistant", "content": '
        '[{"type": "tool_use", "id": "t1", "name": "Bash", "input": '
        + _nested_object(DEEP)
        + '}]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", '
        '"content": "ok"}]}]'
    )
    return b'{"model": "%s", "max_tokens": 64, "messages": %s}' % (CLAUDE.encode(), turn.encode())


REFUSED = {
    "an integer of 5,000 digits in max_tokens": _huge_integer("max_tokens"),
    "an integer of 5,000 digits in temperature": _huge_integer("temperature"),
    "1,000 levels inside tools[].input_schema": _deep_tool_schema(),
    "1,000 levels inside tool_use.input": _deep_tool_use(),
}
PATHS = ("/v1/messages", "/v1/messages/count_tokens")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_bodies_get_a_4xx_and_a_row(router_home: Path, case: str, path: str) -> None:
    with rig(router_home) as r:
        answer = r.post(REFUSED[case], path=path)
        assert 400 <= answer.status_code < 500, answer.text
        assert_anthropic_error(answer)
        (row,) = r.rows(1)
        assert row["outcome"] == "rejected"
        assert not r.ollama.requests_to("/api/chat") and not r.anthropic.messages_requests()


@pytest.mark.parametrize("path", PATHS)
def test_a_deeply_nested_user_id_string_is_answered_without_a_session(
    router_home: Path, path: str
) -> None:
    with rig(router_home) as r:
        answer = r.post(_deep_user_id(), path=path)
        assert answer.status_code == 200, answer.text
        if path == "/v1/messages":
            (row,) = r.rows(1)
            assert row["outcome"] == "ok" and row["session_id"] is None
        else:
            assert answer.json()["input_tokens"] > 0


# -- bounded log growth (point 5) ---------------------------------------------------------------


def test_what_a_client_sends_is_stored_capped(router_home: Path) -> None:
    long_model = "claude-" + "x" * 20_000
    with rig(router_home) as r:
        answer = r.post(
            {**VALID, "model": long_model},
            headers={"x-claude-code-session-id": "s" * 8_000},
        )
        assert answer.status_code == 200, answer.text
        refused = r.post(b"{", headers={"x-claude-code-session-id": "t" * 8_000})
        assert refused.status_code == 400
        rows = r.rows(2)
    for row in rows:
        assert len(row["session_id"]) <= 200
        for column in ("model", "requested_model", "provider", "rule", "error_class"):
            assert row[column] is None or len(row[column]) <= 200, column
        assert row["reason"] is None or len(row["reason"]) <= 1000


def test_refusals_without_the_token_are_folded_per_address(router_home: Path) -> None:
    from test_proxy_support import decision_rows

    with rig(router_home, env={"HYBRID_ROUTER_TOKEN": "secret-token-123"}) as r:
        for _ in range(100):
            refused = r.post(VALID, headers={"x-claude-code-session-id": "z" * 8_000})
            assert refused.status_code == 401
        (first,) = r.rows(1)  # the first of the minute is written at once; the rest counted
        assert first["outcome"] == "rejected" and "127.0.0.1" in first["reason"]
        allowed = r.post(VALID, headers={"x-api-key": "secret-token-123"})
        assert allowed.status_code == 200
    rows = decision_rows(router_home)  # the proxy stopped: the count row is written
    rejected = [row for row in rows if row["outcome"] == "rejected"]
    assert len(rejected) == 2
    assert "99 more" in rejected[1]["reason"]
    assert len(rows) == 3


# -- keys never printed (point 7) ------------------------------------------------------------


def test_a_key_with_a_line_break_never_reaches_the_log(
    router_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-ant-api03-HEADSECRET1234\nTAILSECRET5678"
    with rig(router_home, env={"ANTHROPIC_API_KEY": key}) as r:
        with caplog.at_level("WARNING", logger="hybrid_router.proxy"):
            counted = r.post(VALID, path="/v1/messages/count_tokens")
        assert counted.status_code == 200 and counted.json()["input_tokens"] > 0  # estimated
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "count_tokens passthrough failed" in logged
    for part in ("HEADSECRET1234", "TAILSECRET5678"):
        assert part not in logged
