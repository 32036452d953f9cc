"""The answer checks (hybrid_router/proxy/checks.py) on their own: each check, the stream
collector, the schema cache, the refusal wording shared with the MCP delegate.

The proxy's behaviour with them (fallback, held streams, rows) is in
test_answer_checks_proxy.py; the real Claude Code CLI in test_answer_checks_claude.py.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from claude_code_bodies import claude_code_body, tool_definition, with_tool_round_trip

from hybrid_router.config.schema import Provider
from hybrid_router.core.checks import CHECKS, is_canned_refusal, opens_with_refusal
from hybrid_router.mcp_server.answers import REFUSAL, check_answer
from hybrid_router.providers.link import Link
from hybrid_router.proxy import checks
from hybrid_router.proxy.checks import (
    Answer,
    AnswerCollector,
    FailedCheck,
    RequestChecks,
    ToolUse,
    answer_of_message,
    canonical,
    recent_calls,
)

LINK = Link(
    "ollama", Provider(kind="ollama", base_url="http://127.0.0.1:1"), "qwen3:8b", "", None, 8192
)


def request(**extra: Any) -> dict[str, Any]:
    """A Claude Code-shaped request: 24 tools whose schemas require `command` and forbid
    anything but `command`, `timeout` and `description`."""
    body = claude_code_body("list the files here", stream=False)
    body.update(extra)
    return body


def call(name: str = "Bash", **tool_input: Any) -> ToolUse:
    return ToolUse(name, tool_input or {"command": "ls"})


def problem(answer: Answer, body: dict[str, Any] | None = None) -> str | None:
    found = RequestChecks(body or request()).problem(answer)
    return None if found is None else found[0]


def test_a_good_answer_passes() -> None:
    assert problem(Answer(text="Here you are.")) is None
    assert problem(Answer(calls=[call()], stop_reason="tool_use")) is None
    assert problem(Answer(text="Let me look.", calls=[call(command="ls", timeout=5)])) is None


def test_empty() -> None:
    assert problem(Answer()) == "empty"
    assert problem(Answer(text=" \n\t ")) == "empty"


def test_truncated_tool_call() -> None:
    assert problem(Answer(calls=[call()], stop_reason="max_tokens")) == "truncated-tool-call"
    written = Answer(text='Sure.\n<tool_call>\n{"name": "Bash", "argu', stop_reason="max_tokens")
    assert problem(written) == "truncated-tool-call"
    # A long text answer cut at max_tokens is not a broken tool call.
    assert problem(Answer(text="A long essay", stop_reason="max_tokens")) is None


def test_unknown_tool() -> None:
    assert problem(Answer(calls=[call("Delete", command="rm")])) == "unknown-tool"
    assert problem(Answer(calls=[ToolUse(None, {})])) == "unknown-tool"
    assert problem(Answer(calls=[call()]), request(tools=[])) == "unknown-tool"


@pytest.mark.parametrize(
    "tool_input",
    [
        {},  # the required `command` is missing
        {"command": 42},  # a number where a string belongs
        {"command": "ls", "force": True},  # additionalProperties: false
        {"command": "ls", "timeout": "soon"},
        ["ls"],  # not an object
        "ls",
    ],
)
def test_invalid_tool_input(tool_input: Any) -> None:
    assert problem(Answer(calls=[ToolUse("Bash", tool_input)])) == "invalid-tool-input"


def test_enums_and_nested_schemas() -> None:
    todo = {
        "name": "TodoWrite",
        "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "todos": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": {"type": "string", "minLength": 1},
                            "status": {"enum": ["pending", "in_progress", "completed"]},
                        },
                        "required": ["content", "status"],
                    },
                }
            },
            "required": ["todos"],
        },
    }
    body = request(tools=[todo])
    good = {"todos": [{"content": "a", "status": "pending"}]}
    bad = {"todos": [{"content": "a", "status": "later"}]}
    assert problem(Answer(calls=[ToolUse("TodoWrite", good)]), body) is None
    found = RequestChecks(body).problem(Answer(calls=[ToolUse("TodoWrite", bad)]))
    assert found is not None and found[0] == "invalid-tool-input"
    assert "$.todos[0].status" in found[1] and "later" in found[1]


def test_a_schema_that_cannot_be_applied_checks_nothing() -> None:
    odd = {"name": "Odd", "input_schema": {"type": "objekt"}}
    remote = {"name": "Remote", "input_schema": {"$ref": "https://example.invalid/schema.json"}}
    body = request(tools=[odd, remote])
    assert problem(Answer(calls=[ToolUse("Odd", {"a": 1})]), body) is None
    assert problem(Answer(calls=[ToolUse("Remote", {"a": 1})]), body) is None
    # No schema at all: any object will do, anything else will not.
    bare = request(tools=[{"name": "Bare"}])
    assert problem(Answer(calls=[ToolUse("Bare", {"x": 1})]), bare) is None
    assert problem(Answer(calls=[ToolUse("Bare", [1])]), bare) == "invalid-tool-input"


def test_a_remote_ref_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[Any] = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: fetched.append(a))
    remote = {"name": "Remote", "input_schema": {"$ref": "https://example.invalid/s.json"}}
    assert problem(Answer(calls=[ToolUse("Remote", {"a": 1})]), request(tools=[remote])) is None
    assert fetched == []


def test_arguments_the_translation_replaced_are_invalid_input() -> None:
    answer = Answer(calls=[call()], problems=["Bash: invalid JSON tool arguments replaced by {}"])
    assert problem(answer) == "invalid-tool-input"


def test_each_schema_is_compiled_once() -> None:
    checks._validators_by_schema.clear()
    body = request()
    for _ in range(5):
        assert problem(Answer(calls=[call()]), body) is None
    # The 24 tools share one schema: one compilation, whichever request carries it.
    assert len(checks._validators_by_schema) == 1
    other = request(tools=[tool_definition("Read"), {**tool_definition("X"), "input_schema": {}}])
    assert problem(Answer(calls=[ToolUse("X", {"y": 1})]), other) is None
    assert len(checks._validators_by_schema) == 2


def test_tool_loop_counts_calls_since_the_last_typed_prompt() -> None:
    first = request()
    once = with_tool_round_trip(first)  # Bash {"command": "echo hello-from-bash"} once
    twice = with_tool_round_trip(once)
    again = call(command="echo hello-from-bash")
    assert problem(Answer(calls=[again]), once) is None  # a second time
    assert problem(Answer(calls=[again]), twice) == "tool-loop"  # a third time in a row
    # Key order does not make a new call.
    reordered = ToolUse("Bash", {"timeout": 5, "command": "x"})
    history = [ToolUse("Bash", {"command": "x", "timeout": 5})] * 2
    assert canonical(reordered.input) == canonical(history[0].input)
    # Another input in between breaks the run.
    other = with_tool_round_trip(with_tool_round_trip(first), result="x")
    other["messages"][1]["content"][0]["input"] = {"command": "pwd"}
    assert problem(Answer(calls=[again]), other) is None
    # A new typed prompt starts the count again.
    typed = dict(twice)
    typed["messages"] = [*twice["messages"][:-1], {"role": "user", "content": "try again"}]
    typed["messages"].append(twice["messages"][-1])
    assert recent_calls(typed["messages"]) == []
    # Three identical calls in one answer are a loop too.
    assert problem(Answer(calls=[again, again, again])) == "tool-loop"


def test_refusal_only_when_the_whole_answer_is_a_canned_one() -> None:
    for canned in (
        "I'm sorry, but I can't assist with that.",
        "I can\u2019t help with that request.",
        "Sorry, I cannot help.",
    ):
        assert is_canned_refusal(canned), canned
        assert problem(Answer(text=canned)) == "refusal"
    for answer in (
        "I can't complete this: the file does not exist. Create it first?",
        "I'm sorry, but the tests still fail on line 3.",
        "I cannot help with that without the stack trace; can you paste it?",
    ):
        assert not is_canned_refusal(answer), answer
        assert problem(Answer(text=answer)) is None
    # The MCP delegate keeps its own (broader) rule, from the same wording.
    assert opens_with_refusal("I'm sorry, but I can't write that function because it is long.")
    found = check_answer("I\u2019m sorry, but I can't do that.", truncated=False, max_tokens=9)
    assert found is not None and found.kind == REFUSAL


def test_failed_check_names_the_check_and_the_model() -> None:
    failed = RequestChecks(request()).verdict(Answer(), LINK)
    assert isinstance(failed, FailedCheck)
    assert (failed.error_class, failed.provider, failed.model) == ("empty", "ollama", "qwen3:8b")
    assert "empty" in str(failed)
    assert {failed.error_class} <= set(CHECKS)


def test_the_collector_reads_a_stream_as_a_whole_message_reads() -> None:
    message = {
        "content": [
            {"type": "text", "text": "Listing."},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
        ],
        "stop_reason": "tool_use",
    }
    collector = AnswerCollector()
    events = [
        ("message_start", {"type": "message_start", "message": {"content": []}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "List"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "ing."}}),
        ("content_block_stop", {"index": 0}),
        (
            "content_block_start",
            {"index": 1, "content_block": {"type": "tool_use", "name": "Bash", "input": {}}},
        ),
        (
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"comm'}},
        ),
        (
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": 'and": "ls"}'}},
        ),
        ("content_block_stop", {"index": 1}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {}}),
        ("ping", None),
    ]
    for name, payload in events:
        collector(name, payload)
    streamed, whole = collector.answer(), answer_of_message(json.loads(json.dumps(message)))
    assert (streamed.text, streamed.stop_reason) == (whole.text, whole.stop_reason)
    assert [(c.name, c.input) for c in streamed.calls] == [(c.name, c.input) for c in whole.calls]


def test_a_streamed_input_that_is_not_json_is_invalid() -> None:
    collector = AnswerCollector()
    collector(
        "content_block_start", {"index": 0, "content_block": {"type": "tool_use", "name": "Bash"}}
    )
    collector(
        "content_block_delta",
        {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"command": "l'}},
    )
    collector("message_delta", {"delta": {"stop_reason": "tool_use"}})
    assert problem(collector.answer()) == "invalid-tool-input"
