"""A Claude Code session in proxy mode: local requests are never silently cut, and the
conversation can move between a local model and Anthropic.

- Ollama runs a request with the window the request sets (native `/api/chat`, `num_ctx`) or else
  its 4096-token default, dropping the oldest tokens (the fake does the same): the proxy sets
  the tier's window on every request and caps the answer to the room it leaves.
- A local reasoning model's thinking never reaches what Claude Code stores (a thinking block
  without Anthropic's signature makes Anthropic refuse every later request of the session).
- A tool-result continuation of a call a local model made, sent to Anthropic with thinking on,
  goes without `thinking` (Anthropic refuses it otherwise).
- An OpenAI-style server that read fewer than half the prompt's tokens is named in the row.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import anthropic
import pytest
from claude_code_bodies import claude_code_body, with_tool_round_trip
from fakes.fake_anthropic import Reply as AnthropicReply
from fakes.fake_anthropic import error, text
from fakes.fake_ollama import Reply
from test_proxy_support import CLAUDE, CLIENT_KEY, CODE_PROMPT, CODER_MODEL, body, config, rig

from hybrid_router.providers.translate.ollama_chat import (
    ollama_to_openai_response,
    openai_to_ollama_chat,
)
from hybrid_router.proxy.upstream import thinking_would_be_refused

BIG_WINDOW = 65_536


def _big_windows(**tiers: int) -> dict[str, Any]:
    """The default config with local tiers that hold a real Claude Code request."""
    data = copy.deepcopy(config())
    for name in ("fast", "coder", "reasoning"):
        data["tiers"][name]["contextWindow"] = tiers.get(name, BIG_WINDOW)
    data["routes"] = [r for r in data["routes"] if r["name"] != "large-context"]
    return data


# --- the native request and answer ----------------------------------------------------------


def test_the_native_body_has_the_window_one_system_message_objects_and_tool_names():
    payload = {
        "model": "m",
        "stream": True,
        "max_tokens": 999,
        "temperature": 0.3,
        "stop": ["END"],
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "Read", "arguments": '{"file_path": "a.py"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "print(1)"},
        ],
        "tools": [{"type": "function", "function": {"name": "Read", "parameters": {}}}],
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    }
    native = openai_to_ollama_chat(payload, num_ctx=32768, num_predict=512)
    assert native["options"] == {
        "num_ctx": 32768,
        "num_predict": 512,
        "temperature": 0.3,
        "stop": ["END"],
    }
    assert native["stream"] is True and native["format"] == {"type": "object"}
    user = native["messages"][1]
    assert user == {"role": "user", "content": "what is in this picture?", "images": ["QUJD"]}
    call = native["messages"][2]["tool_calls"][0]["function"]
    assert call == {"name": "Read", "arguments": {"file_path": "a.py"}}  # an object, not a string
    assert native["messages"][3] == {"role": "tool", "content": "print(1)", "tool_name": "Read"}


def test_a_whole_native_answer_reads_as_a_completion_and_an_error_stays_one():
    answer = {
        "message": {
            "role": "assistant",
            "content": "",
            "thinking": "hmm",
            "tool_calls": [{"function": {"name": "Bash", "arguments": {"command": "ls"}}}],
        },
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 120,
        "eval_count": 7,
    }
    completion = ollama_to_openai_response(answer)
    (choice,) = completion["choices"]
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == {"command": "ls"}
    assert completion["usage"] == {"prompt_tokens": 120, "completion_tokens": 7}
    assert ollama_to_openai_response({"error": "model not found"}) == {
        "error": {"message": "model not found"}
    }


# --- never silently truncated ---------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_real_claude_code_request_runs_local_with_the_tiers_window(router_home: Path, stream):
    cc = claude_code_body(CODE_PROMPT, stream=stream)  # ~20K tokens: 5x Ollama's default window
    with rig(router_home, config_data=_big_windows()) as r:
        r.ollama.script(CODER_MODEL, Reply(text="Here is the function."))
        response = r.post(cc)
        assert response.status_code == 200, response.text
        (sent,) = r.ollama.requests_to("/api/chat")
        (row,) = r.rows(1)
        assert (row["provider"], row["model"], row["outcome"]) == ("ollama", CODER_MODEL, "ok")
        options = sent.body["options"]
        assert options["num_ctx"] == BIG_WINDOW
        assert row["estimated_tokens"] + options["num_predict"] <= BIG_WINDOW
        # the fake reads every token it was sent (it caps at the window, as Ollama does)
        assert row["input_tokens"] >= row["estimated_tokens"] * 0.5
        assert row["error_class"] is None


def test_an_openai_style_server_that_read_under_half_the_prompt_is_named(router_home: Path):
    """Ollama's OpenAI API cannot be told the window: the fake runs it at 4096 and drops the
    rest, and the row says so (error class, not the `truncated` outcome)."""
    cc = claude_code_body(CODE_PROMPT, stream=False)
    with rig(router_home, config_data=_big_windows(), ollama_protocol="openai") as r:
        assert r.post(cc).status_code == 200
        (row,) = r.rows(1)
        assert (row["outcome"], row["error_class"]) == ("ok", "context-truncated")
        assert row["input_tokens"] <= 4096 < row["estimated_tokens"] / 2


# --- local reasoning stays out of the history -----------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_local_models_thinking_never_reaches_the_client(router_home: Path, stream):
    with (
        rig(router_home, config_data=_big_windows()) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        r.ollama.script(CODER_MODEL, Reply(thinking="Let me think it over.", text="Done."))
        request = {
            "model": CLAUDE,
            "max_tokens": 300,
            "messages": [{"role": "user", "content": CODE_PROMPT}],
        }
        if stream:
            with client.messages.stream(**request) as events:
                message = events.get_final_message()
        else:
            message = client.messages.create(**request)
        assert [block.type for block in message.content] == ["text"]


# --- a turn that moves to Anthropic mid-way -------------------------------------------------


def _anthropic_rules(rec: Any) -> AnthropicReply | None:
    """Anthropic's history rule for thinking (what the real API answers 400 for)."""
    if thinking_would_be_refused(rec.body):
        return error(400, "invalid_request_error", "messages: expected thinking, found tool_use")
    for message in rec.body.get("messages", []):
        for block in message.get("content") if isinstance(message.get("content"), list) else []:
            if block.get("type") == "thinking" and block.get("signature") != "fake-signature":
                return error(400, "invalid_request_error", "Invalid `signature` in `thinking`")
    return None


def test_thinking_rules_the_real_api_enforces_are_what_the_proxy_checks():
    local_call = with_tool_round_trip(claude_code_body(CODE_PROMPT))  # no thinking block first
    assert thinking_would_be_refused(local_call)
    without = {k: v for k, v in local_call.items() if k != "thinking"}
    assert not thinking_would_be_refused(without)
    signed = copy.deepcopy(local_call)
    signed["messages"][1]["content"].insert(
        0, {"type": "thinking", "thinking": "t", "signature": "fake-signature"}
    )
    assert not thinking_would_be_refused(signed)


@pytest.mark.parametrize("stream", [True, False])
def test_a_continuation_of_a_local_tool_call_is_answered_by_anthropic(router_home: Path, stream):
    """The local model made the call; its tool result goes to Anthropic (the local link fails):
    sent without `thinking`, it is answered instead of refused."""
    continuation = with_tool_round_trip(claude_code_body(CODE_PROMPT, stream=stream))
    with rig(router_home, config_data=_big_windows()) as r:
        r.anthropic.handler = _anthropic_rules
        r.anthropic.enqueue(text("All done."))
        r.ollama.fail(500, "model crashed", path="/api/chat")
        response = r.post(continuation)
        assert response.status_code == 200, response.text
        assert "All done." in response.text
        (sent,) = r.anthropic.main_requests()
        assert "thinking" not in sent.body
        edits = sent.body.get("context_management", {}).get("edits", [])
        assert not [e for e in edits if e["type"].startswith("clear_thinking")]
        (row,) = r.rows(1)
        assert (row["provider"], row["outcome"]) == ("anthropic", "fallback")
        assert "failed ollama/" in row["reason"]  # the row says why the local link was passed


def test_a_request_anthropic_would_accept_is_forwarded_byte_for_byte(router_home: Path):
    with rig(router_home) as r:
        payload = claude_code_body("review this login handler for sql injection", stream=False)
        r.anthropic.enqueue(text("Reviewed."))
        assert r.post(payload).status_code == 200
        (sent,) = r.anthropic.main_requests()
        assert sent.body["thinking"] == {"type": "adaptive"}


# --- free cloud before premium on size ------------------------------------------------------


def _with_free_windows(data: dict[str, Any]) -> dict[str, Any]:
    for tier in data["tiers"].values():
        for fallback in tier.get("fallbacks", []):
            if fallback.get("model", "").endswith(":free"):
                fallback["contextWindow"] = 262_144
    return data


def test_a_request_too_big_for_every_local_window_runs_on_a_free_cloud_model(router_home: Path):
    """~90K tokens: over the local windows, inside the free model's: OpenRouter answers it (the
    row names the free model and the context-window rule), and Anthropic is never called."""
    from fakes.fake_openrouter import FakeOpenRouter

    data = _with_free_windows(_big_windows())
    data["routes"] = [r for r in data["routes"] if r["name"] != "large-context"]
    huge = body(CODE_PROMPT + " " + "lorem ipsum dolor sit amet " * 12_000, max_tokens=2000)
    with (
        FakeOpenRouter() as openrouter,
        rig(router_home, config_data=data, openrouter=openrouter) as r,
    ):
        openrouter.script("qwen/qwen3-coder:free", "A free answer.")
        response = r.post(huge)
        assert response.status_code == 200, response.text
        assert "A free answer." in response.text
        assert r.anthropic.messages_requests() == [] and r.ollama.requests_to("/api/chat") == []
        (row,) = r.rows(1)
        assert (row["rule"], row["provider"], row["model"], row["cost"]) == (
            "context-window",
            "openrouter",
            "qwen/qwen3-coder:free",
            0.0,
        )


def test_without_an_openrouter_key_the_large_request_goes_to_premium(router_home: Path):
    data = _with_free_windows(_big_windows())
    huge = body(CODE_PROMPT + " " + "lorem ipsum dolor sit amet " * 12_000, max_tokens=2000)
    with rig(router_home, config_data=data) as r:
        r.anthropic.enqueue(text("Premium answer."))
        assert r.post(huge).status_code == 200
        (row,) = r.rows(1)
        assert (row["rule"], row["provider"]) == ("context-window", "anthropic")
        assert row["fallback_from"] is None  # decided so, not a fallback from a skipped link
