import json

import pytest
from claude_code_bodies import (
    claude_code_body,
    image_block,
    title_generation_body,
    with_tool_round_trip,
)

from hybrid_router.core.signals import IMAGE_TOKENS, signals_from_prompt, signals_from_request


def test_prompt_is_the_users_words_not_the_reminder_or_hook_context():
    body = claude_code_body("refactor utils.py", hook_context="this task suits delegate_to_local")
    signals = signals_from_request(body)
    assert signals.text == "refactor utils.py"
    assert signals.from_request


def test_tool_result_turn_keeps_the_prompt_that_started_the_turn():
    body = with_tool_round_trip(claude_code_body("list the files in src"), result="a.py\nb.py")
    signals = signals_from_request(body)
    assert signals.text == "list the files in src"
    assert signals.is_tool_continuation


def test_tool_result_content_arrays_are_not_prompt_text():
    body = with_tool_round_trip(
        claude_code_body("show me main.py"),
        result=[{"type": "text", "text": "SECURITY VULNERABILITY outage critical"}],
    )
    assert signals_from_request(body).text == "show me main.py"


def test_a_later_user_turn_wins_over_an_earlier_one():
    body = claude_code_body("first question")
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": "answer"}]},
        {"role": "user", "content": "second question"},
    ]
    signals = signals_from_request(body)
    assert signals.text == "second question"
    assert not signals.is_tool_continuation


def test_reminder_inside_the_prompt_block_is_removed():
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "<system-reminder>x</system-reminder>fix it"}],
    }
    assert signals_from_request(body).text == "fix it"


def test_model_thinking_and_session_from_a_claude_code_body():
    body = claude_code_body("hi", session_id="4d3789bd-9fc1-486d-af6b-e362f4cfc349")
    signals = signals_from_request(body)
    assert signals.requested_model == "claude-opus-4-8"
    assert signals.thinking == "adaptive"
    assert signals.session_id == "4d3789bd-9fc1-486d-af6b-e362f4cfc349"
    assert signals.tool_count == 24
    assert signals.max_tokens == 64000
    assert signals.server_tools == ()
    assert not signals.has_images


def test_session_header_wins_and_is_case_insensitive():
    body = claude_code_body("hi", session_id="from-metadata")
    signals = signals_from_request(body, {"X-Claude-Code-Session-Id": "from-header"})
    assert signals.session_id == "from-header"
    assert signals_from_request(body, {"x-claude-code-session-id": "lower"}).session_id == "lower"


def test_legacy_user_id_string_carries_the_session():
    body = {
        "messages": [],
        "metadata": {"user_id": "user_abc_account__session_12345678-1234-1234-1234-123456789abc"},
    }
    assert signals_from_request(body).session_id == "12345678-1234-1234-1234-123456789abc"


def test_server_web_tools_are_detected():
    body = claude_code_body(
        "what's new",
        extra_tools=[
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
            {"type": "web_fetch_20250910", "name": "web_fetch"},
        ],
    )
    assert signals_from_request(body).server_tools == ("web_search_20250305", "web_fetch_20250910")


def test_client_tools_named_like_web_tools_are_not_server_tools():
    # Claude Code's own WebSearch/WebFetch are client tools (no `type`): any model can call them.
    assert signals_from_request(claude_code_body("hi")).server_tools == ()


def test_images_are_seen_in_prompts_and_tool_results_and_cost_a_fixed_estimate():
    plain = claude_code_body("what is in this picture?")
    with_image = json.loads(json.dumps(plain))
    with_image["messages"][0]["content"].append(image_block())
    big = json.loads(json.dumps(with_image))
    big["messages"][0]["content"][-1]["source"]["data"] *= 400  # 40 KB of base64
    a, b, c = (signals_from_request(x) for x in (plain, with_image, big))
    assert b.has_images and not a.has_images
    assert b.estimated_tokens - a.estimated_tokens == IMAGE_TOKENS
    # base64 bytes are not text: a bigger encoding does not change the estimate
    assert c.estimated_tokens == b.estimated_tokens

    tool_image = with_tool_round_trip(plain, result=[image_block()])
    assert signals_from_request(tool_image).has_images


def test_token_estimate_of_a_full_claude_code_request_is_plausible():
    body = claude_code_body("say hi")
    raw = json.dumps(body)
    assert 75_000 <= len(raw) <= 90_000
    tokens = signals_from_request(body).estimated_tokens
    # characters / 3.5 of what the model reads, give or take JSON syntax
    assert len(raw) / 4.5 < tokens < len(raw) / 3.0


def test_token_estimate_grows_with_the_conversation():
    short = signals_from_request(claude_code_body("hi")).estimated_tokens
    body = claude_code_body("hi")
    body["messages"].insert(1, {"role": "assistant", "content": "x" * 7000})
    longer = signals_from_request(body).estimated_tokens
    assert longer - short == 2000 + 4  # 7000 chars / 3.5, plus one message's framing


def test_prompt_signals_estimate_and_strip():
    signals = signals_from_prompt("<system-reminder>ctx</system-reminder> read a.py", "sess")
    assert signals.text == "read a.py"
    assert signals.session_id == "sess"
    assert signals.estimated_tokens > 0
    assert not signals.from_request


def test_title_generation_shape_is_recognised():
    signals = signals_from_request(title_generation_body("fix the login bug", model="dh-model"))
    assert signals.is_structured_without_tools
    assert "fix the login bug" in signals.text
    assert not signals_from_request(claude_code_body("hi")).is_structured_without_tools


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": "not a list"},
        {"messages": [None, 3, "x", {"role": "user", "content": 7}]},
        {
            "messages": [
                {"role": "user", "content": [None, {"type": 5}, {"type": "text", "text": None}]}
            ]
        },
        {
            "model": 42,
            "tools": "x",
            "system": 3,
            "metadata": "x",
            "thinking": "on",
            "max_tokens": "big",
        },
        {"metadata": {"user_id": "{not json"}, "messages": []},
        {"tools": [None, {"type": None}, {"name": 1, "description": 2}], "messages": []},
        {"messages": [{"role": "user", "content": [{"type": "tool_use", "input": {1, 2}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "document", "source": "x"}]}]},
    ],
)
def test_hostile_bodies_give_signals_not_exceptions(body):
    signals = signals_from_request(body)
    assert signals.estimated_tokens >= 0
    assert isinstance(signals.text, str)
