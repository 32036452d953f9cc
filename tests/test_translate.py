"""Anthropic <-> OpenAI translation (hybrid_router.providers.translate).

Every pitfall listed in hybrid_router/providers/translate/__init__.py has a test named
`test_pitfall<N>_...`. Streamed results are checked event by event and then reassembled by the
official `anthropic` SDK, fed the bytes over a mock HTTP transport exactly as Claude Code's SDK
would receive them.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import anthropic
import httpx2
import pytest
from claude_code_bodies import (
    AGENT_LIST,
    PNG_1X1,
    REMINDER,
    TOOL_NAMES,
    claude_code_body,
    image_block,
    system_blocks,
    title_generation_body,
    with_tool_round_trip,
)

from hybrid_router.providers.errors import ErrorAnswer
from hybrid_router.providers.translate import (
    OpenAIStreamToAnthropic,
    TranslationError,
    anthropic_to_openai_request,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
    parse_tool_arguments,
    sse_bytes,
)
from hybrid_router.providers.translate.stream import PING_EVERY

# --- helpers ------------------------------------------------------------------------------


def body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-8", "max_tokens": 100, "messages": messages, **extra}


def translate(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return anthropic_to_openai_request(body(messages, **extra), "qwen3:8b")


def completion(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen3:8b",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        **extra,
    }


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


def usage_chunk(prompt: int, completion_tokens: int, cached: int | None = None) -> dict:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}


def tool_fragment(
    index: int, arguments: str | None = None, *, id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    call: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        call.update(id=id, type="function")
    return call


def run_stream(chunks: list[dict], **kwargs: Any) -> tuple[list[tuple[str, dict]], Any]:
    translator = OpenAIStreamToAnthropic("claude-opus-4-8", **kwargs)
    events = [event for c in chunks for event in translator.feed(c)]
    return events + translator.finish(), translator


def shape(events: list[tuple[str, dict]]) -> list[tuple]:
    """A compact, exact picture of an event sequence."""
    out: list[tuple] = []
    for name, data in events:
        assert data["type"] == name  # the event line and the JSON type always agree
        if name == "content_block_start":
            out.append(("start", data["index"], data["content_block"]["type"]))
        elif name == "content_block_delta":
            delta = data["delta"]
            value = delta.get("text", delta.get("partial_json", delta.get("thinking")))
            out.append(("delta", data["index"], value))
        elif name == "content_block_stop":
            out.append(("stop", data["index"]))
        elif name == "message_delta":
            out.append(("message_delta", data["delta"]["stop_reason"], data["usage"]))
        else:
            out.append((name,))
    return out


def sdk_message(events: list[tuple[str, dict]]) -> anthropic.types.Message:
    """Reassemble a stream with the anthropic SDK, from the bytes the proxy would send."""
    raw = b"".join(sse_bytes(name, data) for name, data in events)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    client = anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://proxy.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    try:
        with client.messages.stream(
            model="claude-opus-4-8", max_tokens=100, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            return stream.get_final_message()
    finally:
        client.close()


def check_block_order(events: list[tuple[str, dict]]) -> None:
    """Anthropic's rules: message_start first, each block closed before the next opens,
    indexes 0.., then message_delta and message_stop last."""
    names = [name for name, _ in events if name != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    open_index, next_index = None, 0
    for name, data in events:
        if name == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index, next_index = None, next_index + 1
    assert open_index is None


# --- request: system ----------------------------------------------------------------------


def test_system_string_becomes_one_leading_system_message() -> None:
    out = translate([{"role": "user", "content": "hi"}], system="Be brief.")
    assert out["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_system_block_array_is_flattened_in_order_without_cache_control() -> None:
    out = translate([{"role": "user", "content": "hi"}], system=system_blocks())
    expected = "\n\n".join(block["text"] for block in system_blocks())
    assert out["messages"][0] == {"role": "system", "content": expected}


def test_system_role_messages_inside_messages_are_merged_by_default() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Agents: A, B"},
        {"role": "system", "content": [{"type": "text", "text": "hook context"}]},
    ]
    out = translate(messages, system="Main prompt")
    assert out["messages"] == [
        {"role": "system", "content": "Main prompt\n\nAgents: A, B\n\nhook context"},
        {"role": "user", "content": "hi"},
    ]


def test_system_role_messages_can_be_kept_in_place() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "system", "content": "Agents"}]
    out = anthropic_to_openai_request(body(messages), "m", system_messages="keep")
    assert [m["role"] for m in out["messages"]] == ["user", "system"]
    with pytest.raises(ValueError):
        anthropic_to_openai_request(body(messages), "m", system_messages="drop")


# --- request: content ---------------------------------------------------------------------


def test_user_text_blocks_become_a_plain_string() -> None:
    out = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "one"},
                    {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ]
    )
    assert out["messages"] == [{"role": "user", "content": "one\n\ntwo"}]


def test_base64_and_url_images_become_image_url_parts() -> None:
    url_image = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    out = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    image_block(),
                    url_image,
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1X1}"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
    ]


def test_documents_become_text_or_a_visible_note() -> None:
    out = translate(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "notes",
                        "source": {"type": "text", "data": "abc"},
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBERi0=",
                        },
                    },
                ],
            }
        ]
    )
    text = out["messages"][0]["content"]
    assert "Document: notes\nabc" in text and "application/pdf" in text and "omitted" in text


def test_assistant_text_and_tool_use_become_one_message_with_tool_calls() -> None:
    out = translate(
        [
            {"role": "user", "content": "list files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "EqQB"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "text", "text": "Let me "},
                    {"type": "text", "text": "look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    },
                    {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {}},
                ],
            },
        ]
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
            },
            {"id": "toolu_2", "type": "function", "function": {"name": "Read", "arguments": "{}"}},
        ],
    }


def test_assistant_with_only_tool_use_has_null_content_and_thinking_only_has_empty() -> None:
    out = translate(
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "x", "signature": "s"}],
            },
        ]
    )
    assert out["messages"][1]["content"] is None
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": ""}
    assert out["messages"][3] == {"role": "assistant", "content": ""}


def test_tool_result_content_array_is_flattened_and_is_error_marked() -> None:
    out = translate(
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
                    {"type": "tool_use", "id": "t2", "name": "Bash", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "line 1"},
                            {"type": "text", "text": "line 2"},
                        ],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": "ok",
                        "is_error": False,
                    },
                ],
            },
        ]
    )
    assert out["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "Error: line 1\nline 2"},
        {"role": "tool", "tool_call_id": "t2", "content": "ok"},
    ]


def test_pitfall7_tool_messages_come_right_after_the_assistant_then_user_text() -> None:
    out = translate(
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "also consider this"},
                    {"type": "tool_result", "tool_use_id": "t1", "content": "done"},
                ],
            },
        ]
    )
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "user"]
    assert out["messages"][3] == {"role": "user", "content": "also consider this"}


def test_pitfall8_images_in_tool_results_follow_in_a_user_message() -> None:
    claude = with_tool_round_trip(
        claude_code_body(),
        tool_name="Read",
        result=[{"type": "text", "text": "screenshot:"}, image_block()],
    )
    out = anthropic_to_openai_request(claude, "llava")
    tool, user = out["messages"][3], out["messages"][4]
    assert tool["role"] == "tool" and tool["content"].startswith("screenshot:\n[image 1")
    assert user == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1X1}"}}
        ],
    }


# --- request: tools -----------------------------------------------------------------------


def test_tools_map_to_functions_and_anthropic_only_keys_are_dropped() -> None:
    tool = {
        "name": "Read",
        "description": "Read a file",
        "type": "custom",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        "cache_control": {"type": "ephemeral"},
        "defer_loading": True,
        "strict": True,
        "input_examples": [{"path": "/a"}],
        "eager_input_streaming": True,
    }
    out = translate([{"role": "user", "content": "hi"}], tools=[tool])
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Read",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]


def test_pitfall9_schema_dialect_keys_are_stripped_but_property_names_survive() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "format": {"type": "string", "format": "uri"},
            "items": {"type": "array", "items": {"$schema": "x", "type": "string"}},
        },
        "additionalProperties": False,
    }
    tools = [{"name": "Fetch", "input_schema": schema}]
    default = translate([{"role": "user", "content": "hi"}], tools=tools)
    params = default["tools"][0]["function"]["parameters"]
    assert "$schema" not in json.dumps(params) and params["additionalProperties"] is False
    assert params["properties"]["format"]["format"] == "uri"
    strict = anthropic_to_openai_request(
        body([{"role": "user", "content": "hi"}], tools=tools),
        "m",
        strip_schema_keys={"format", "additionalProperties"},
    )
    params = strict["tools"][0]["function"]["parameters"]
    assert params == {
        "type": "object",
        "properties": {
            "format": {"type": "string"},
            "items": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert schema["$schema"]  # the caller's body is not modified


def test_server_tools_raise_a_translation_error_naming_them() -> None:
    tools = [
        {"name": "Read", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "code_execution_20250825", "name": "code_execution"},
    ]
    with pytest.raises(TranslationError, match=r"web_search \(web_search_20250305\).*code_exec"):
        translate([{"role": "user", "content": "hi"}], tools=tools)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "Read"},
            {"tool_choice": {"type": "function", "function": {"name": "Read"}}},
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
        (None, {}),
    ],
)
def test_tool_choice_mapping(choice: dict | None, expected: dict) -> None:
    tools = [{"name": "Read", "input_schema": {"type": "object"}}]
    out = translate([{"role": "user", "content": "hi"}], tools=tools, tool_choice=choice)
    got = {k: out[k] for k in ("tool_choice", "parallel_tool_calls") if k in out}
    assert got == expected


def test_empty_tools_send_neither_tools_nor_tool_choice() -> None:
    out = translate([{"role": "user", "content": "hi"}], tools=[], tool_choice={"type": "auto"})
    assert "tools" not in out and "tool_choice" not in out


# --- request: parameters ------------------------------------------------------------------


def test_scalar_parameters_map_and_pitfall11_temperature_is_not_rescaled() -> None:
    out = translate(
        [{"role": "user", "content": "hi"}],
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END", "STOP"],
        stream=True,
    )
    assert out["model"] == "qwen3:8b" and out["max_tokens"] == 100
    assert out["temperature"] == 0.7 and out["top_p"] == 0.9 and out["top_k"] == 40
    assert out["stop"] == ["END", "STOP"]
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    plain = translate([{"role": "user", "content": "hi"}], temperature=0)
    assert plain["temperature"] == 0 and "stream" not in plain and "stop" not in plain


def test_thinking_metadata_and_context_management_are_dropped() -> None:
    out = translate(
        [{"role": "user", "content": "hi"}],
        thinking={"type": "enabled", "budget_tokens": 2048},
        metadata={"user_id": "u"},
        context_management={"edits": []},
        output_config={"effort": "high"},
        service_tier="auto",
        cache_control={"type": "ephemeral"},
    )
    assert set(out) == {"model", "messages", "max_tokens"}


def test_output_config_json_schema_becomes_response_format() -> None:
    title = title_generation_body("fix the login bug")
    out = anthropic_to_openai_request(title, "qwen3:8b")
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": title["output_config"]["format"]["schema"],
        },
    }
    assert "tools" not in out


def test_request_does_not_modify_its_input() -> None:
    claude = with_tool_round_trip(claude_code_body())
    before = copy.deepcopy(claude)
    anthropic_to_openai_request(claude, "m")
    assert claude == before


# --- request: a Claude Code-shaped body ---------------------------------------------------


def test_claude_code_round_trip_keeps_all_text_and_leaks_nothing() -> None:
    claude = with_tool_round_trip(
        claude_code_body("fix the bug", hook_context="branch is main"), result="hello-from-bash"
    )
    out = anthropic_to_openai_request(claude, "qwen3-coder:30b")
    messages = out["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    system = messages[0]["content"]
    texts = [block["text"] for block in system_blocks()] + [AGENT_LIST, "branch is main"]
    positions = [system.index(text) for text in texts]
    assert positions == sorted(positions)  # system blocks, then the trailing system message
    assert messages[1]["content"] == REMINDER + "\n\nfix the bug"
    call = messages[2]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"command": "echo hello-from-bash"}
    assert messages[3] == {"role": "tool", "tool_call_id": call["id"], "content": "hello-from-bash"}
    assert [t["function"]["name"] for t in out["tools"]] == list(TOOL_NAMES)
    assert len(out["tools"]) == 24
    dumped = json.dumps(out)
    for leak in (
        "cache_control",
        "metadata",
        "thinking",
        "device_id",
        "context_management",
        "adaptive",
        "$schema",
        "effort",
    ):
        assert leak not in dumped, leak
    assert set(out) == {"model", "messages", "max_tokens", "stream", "stream_options", "tools"}


def test_pitfall12_large_claude_code_prompt_is_kept_whole_and_translated_fast() -> None:
    # Claude Code sends ~80 KB and 24 tools on every turn: nothing may be cut, and the
    # translation runs on every request, so it must stay cheap.
    claude = with_tool_round_trip(claude_code_body())
    out = anthropic_to_openai_request(claude, "m")
    system_chars = sum(len(block["text"]) for block in system_blocks())
    assert len(out["messages"][0]["content"]) >= system_chars + len(AGENT_LIST)
    descriptions = [t["function"]["description"] for t in out["tools"]]
    assert descriptions == [t["description"] for t in claude["tools"]]
    started = time.perf_counter()
    for _ in range(50):
        anthropic_to_openai_request(claude, "m")
    assert (time.perf_counter() - started) / 50 < 0.02


# --- response (non-streaming) -------------------------------------------------------------


def test_text_response_is_a_full_anthropic_message() -> None:
    data = completion(
        {"content": "Hello!"},
        usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    )
    message = openai_to_anthropic_response(data, "claude-opus-4-8")
    assert message["id"].startswith("msg_") and message["model"] == "claude-opus-4-8"
    assert message == {
        "id": message["id"],
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-8",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    anthropic.types.Message.model_validate(message)  # the SDK accepts it


@pytest.mark.parametrize(
    ("finish", "tool_calls", "expected"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("function_call", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("stop", True, "tool_use"),  # a server that forgot to say tool_calls
        (None, False, "end_turn"),
        ("error", False, "end_turn"),
    ],
)
def test_finish_reason_to_stop_reason(finish: str | None, tool_calls: bool, expected: str) -> None:
    message: dict[str, Any] = {"content": "x"}
    if tool_calls:
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}}
        ]
    out = openai_to_anthropic_response(completion(message, finish), "m")
    assert out["stop_reason"] == expected


def test_vllm_stop_reason_string_becomes_stop_sequence() -> None:
    data = completion({"content": "abc"})
    data["choices"][0]["stop_reason"] = "END"
    out = openai_to_anthropic_response(data, "m")
    assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", "END")


def test_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    data = completion(
        {
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "Read", "arguments": '{"file_path": "/a.py"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                },
            ],
        },
        "tool_calls",
    )
    out = openai_to_anthropic_response(data, "m")
    assert out["content"] == [
        {"type": "tool_use", "id": "call_a", "name": "Read", "input": {"file_path": "/a.py"}},
        {"type": "tool_use", "id": "call_b", "name": "Bash", "input": {"command": "ls"}},
    ]
    anthropic.types.Message.model_validate(out)


def test_pitfall2_empty_or_missing_arguments_become_empty_input() -> None:
    data = completion(
        {
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "TaskList", "arguments": ""}},
                {"id": "c2", "type": "function", "function": {"name": "CronList"}},
                {
                    "id": "c3",
                    "type": "function",
                    "function": {"name": "TaskGet", "arguments": "  "},
                },
            ]
        },
        "tool_calls",
    )
    problems: list[str] = []
    out = openai_to_anthropic_response(data, "m", problems=problems)
    assert [block["input"] for block in out["content"]] == [{}, {}, {}]
    assert problems == []


def test_pitfall3_arguments_already_parsed_are_taken_as_is() -> None:
    data = completion(
        {
            "tool_calls": [
                {"function": {"name": "Bash", "arguments": {"command": "ls", "timeout": 5}}}
            ]
        }
    )
    out = openai_to_anthropic_response(data, "m")
    assert out["content"][0]["input"] == {"command": "ls", "timeout": 5}


@pytest.mark.parametrize(
    ("raw", "expected", "problem"),
    [
        ('{"a": 1}', {"a": 1}, False),
        ('```json\n{"a": 1}\n```', {"a": 1}, False),
        ('{"a": 1} I hope this helps', {"a": 1}, False),
        ('Sure: {"a": {"b": [1, 2]}}', {"a": {"b": [1, 2]}}, False),
        ('"{\\"a\\": 1}"', {"a": 1}, False),  # double-encoded
        ('{"a": 1', {}, True),  # cut off
        ("not json at all", {}, True),
        ("[1, 2]", {}, True),
        (42, {}, True),
    ],
)
def test_pitfall4_invalid_json_arguments_are_repaired_or_replaced(
    raw: Any, expected: dict, problem: bool
) -> None:
    args, note = parse_tool_arguments(raw)
    assert args == expected and (note is not None) == problem


def test_pitfall4_invalid_arguments_do_not_fail_the_turn_and_are_reported() -> None:
    data = completion(
        {
            "content": "Running it.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "Bash", "arguments": "{oops"}}
            ],
        }
    )
    problems: list[str] = []
    out = openai_to_anthropic_response(data, "m", problems=problems)
    assert out["content"][1]["input"] == {} and out["stop_reason"] == "tool_use"
    assert len(problems) == 1 and problems[0].startswith("Bash: invalid JSON")


TEXT_CALLS = [
    ('<tool_call>\n{"name": "Bash", "arguments": {"command": "ls"}}\n</tool_call>', ""),
    (
        'I will list them.\n<tool_call>{"name": "Bash", '
        + '"arguments": {"command": "ls"}}</tool_call>',
        "I will list them.",
    ),
    ('```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```', ""),
    ('[TOOL_CALLS][{"name": "Bash", "arguments": {"command": "ls"}}]', ""),
    ('[TOOL_CALLS]Bash[ARGS]{"command": "ls"}', ""),
    ('{"name": "Bash", "parameters": {"command": "ls"}}', ""),
    (
        '{"type": "function", "function": '
        '{"name": "Bash", "arguments": "{\\"command\\": \\"ls\\"}"}}',
        "",
    ),
]


@pytest.mark.parametrize(("text", "rest"), TEXT_CALLS)
def test_pitfall5_tool_calls_written_as_text_are_parsed(text: str, rest: str) -> None:
    out = openai_to_anthropic_response(
        completion({"content": text}), "m", tool_names=["Bash", "Read"]
    )
    blocks = out["content"]
    tool = blocks[-1]
    assert (tool["type"], tool["name"], tool["input"]) == ("tool_use", "Bash", {"command": "ls"})
    assert tool["id"].startswith("toolu_") and out["stop_reason"] == "tool_use"
    assert [b["text"] for b in blocks if b["type"] == "text"] == ([rest] if rest else [])


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',  # not an offered tool
        '```json\n{"name": "Bash", "value": 3}\n```',  # ordinary JSON that names no call
        "```python\nprint('hi')\n```",
        '{"title": "Fix login"}',
    ],
)
def test_pitfall5_text_that_is_not_a_call_stays_text(text: str) -> None:
    out = openai_to_anthropic_response(completion({"content": text}), "m", tool_names=["Bash"])
    assert out["content"] == [{"type": "text", "text": text}]


def test_pitfall5_fallback_parser_is_off_without_tool_names() -> None:
    text = '<tool_call>{"name": "Bash", "arguments": {}}</tool_call>'
    out = openai_to_anthropic_response(completion({"content": text}), "m")
    assert out["content"] == [{"type": "text", "text": text}]


def test_pitfall6_missing_duplicate_and_odd_tool_ids_are_fixed() -> None:
    data = completion(
        {
            "tool_calls": [
                {"type": "function", "function": {"name": "Read", "arguments": "{}"}},
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "Read", "arguments": "{}"},
                },
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": "{}"},
                },
                {
                    "id": "functions.Bash:2",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": "{}"},
                },
            ]
        },
        "tool_calls",
    )
    ids = [block["id"] for block in openai_to_anthropic_response(data, "m")["content"]]
    assert ids[0].startswith("toolu_") and ids[1] == "call_0"
    assert ids[2].startswith("toolu_") and ids[3] == "functions_Bash_2"
    assert len(set(ids)) == 4
    # The generated id comes back in the tool_result and is passed through unchanged.
    follow_up = translate(
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": ids[0], "name": "Read", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": ids[0], "content": "x"}],
            },
        ]
    )
    assert follow_up["messages"][1]["tool_calls"][0]["id"] == ids[0]
    assert follow_up["messages"][2]["tool_call_id"] == ids[0]


def test_pitfall10_cached_tokens_are_not_counted_twice() -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 800, "cache_write_tokens": 150},
    }
    out = openai_to_anthropic_response(completion({"content": "x"}, usage=usage), "m")
    assert out["usage"] == {
        "input_tokens": 50,
        "output_tokens": 50,
        "cache_read_input_tokens": 800,
        "cache_creation_input_tokens": 150,
    }
    total = sum(
        out["usage"][k]
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )
    assert total == 1000


def test_missing_usage_gives_zero_counts() -> None:
    out = openai_to_anthropic_response(completion({"content": "x"}), "m")
    assert out["usage"]["input_tokens"] == 0 and out["usage"]["output_tokens"] == 0


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_is_dropped_by_default_or_becomes_a_thinking_block(key: str) -> None:
    data = completion({"content": "42", key: "Let me think."})
    assert openai_to_anthropic_response(data, "m")["content"] == [{"type": "text", "text": "42"}]
    out = openai_to_anthropic_response(data, "m", thinking=True)
    assert out["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},
        {"type": "text", "text": "42"},
    ]
    anthropic.types.Message.model_validate(out)


def test_content_parts_and_empty_text_in_responses() -> None:
    parts = completion({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    assert openai_to_anthropic_response(parts, "m")["content"] == [{"type": "text", "text": "ab"}]
    assert openai_to_anthropic_response(completion({"content": ""}), "m")["content"] == []


def test_an_error_object_with_status_200_raises_error_answer() -> None:
    data = {"error": {"message": "Provider returned error", "code": 502}}
    with pytest.raises(ErrorAnswer) as caught:
        openai_to_anthropic_response(data, "m")
    assert caught.value.status == 200  # what the backend answered with
    assert caught.value.retriable and caught.value.error_class == "upstream-error"
    assert caught.value.client_error is not None
    status, body = caught.value.client_error
    assert status == 502
    assert json.loads(body)["error"] == {"type": "api_error", "message": "Provider returned error"}


# --- streaming ----------------------------------------------------------------------------

TEXT_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({"content": " world"}),
    chunk({}, "stop"),
    usage_chunk(25, 3),
]


def test_stream_text_only_exact_sequence() -> None:
    events, _ = run_stream(TEXT_STREAM, input_tokens=25)
    assert shape(events) == [
        ("message_start",),
        ("start", 0, "text"),
        ("delta", 0, "Hel"),
        ("delta", 0, "lo"),
        ("delta", 0, " world"),
        ("stop", 0),
        (
            "message_delta",
            "end_turn",
            {
                "input_tokens": 25,
                "output_tokens": 3,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        ),
        ("message_stop",),
    ]
    start = events[0][1]["message"]
    assert start["model"] == "claude-opus-4-8" and start["id"].startswith("msg_")
    assert start["usage"]["input_tokens"] == 25 and start["stop_reason"] is None
    message = sdk_message(events)
    assert message.content[0].text == "Hello world" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 3)


def test_stream_usage_in_a_trailing_chunk_after_finish_reason_with_cache() -> None:
    chunks = [chunk({"content": "ok"}), chunk({}, "stop"), usage_chunk(1000, 7, cached=900)]
    events, _ = run_stream(chunks)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 0  # unknown at the start
    assert shape(events)[-2] == (
        "message_delta",
        "end_turn",
        {
            "input_tokens": 100,
            "output_tokens": 7,
            "cache_read_input_tokens": 900,
            "cache_creation_input_tokens": 0,
        },
    )
    message = sdk_message(events)
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (100, 900)


def test_stream_without_any_usage_estimates_output_tokens() -> None:
    events, _ = run_stream([chunk({"content": "x" * 70}), chunk({}, "stop")])
    assert shape(events)[-2] == ("message_delta", "end_turn", {"output_tokens": 20})
    assert sdk_message(events).usage.output_tokens == 20


def test_stream_usage_on_the_first_chunk_goes_into_message_start() -> None:
    first = chunk({"content": "a"}, usage={"prompt_tokens": 40, "completion_tokens": 1})
    events, _ = run_stream([first, chunk({}, "stop")])
    assert events[0][1]["message"]["usage"]["input_tokens"] == 40


def test_stream_text_then_two_tool_calls_in_one_chunk() -> None:
    chunks = [
        chunk({"role": "assistant", "content": "Checking."}),
        chunk(
            {
                "tool_calls": [
                    tool_fragment(0, '{"file_path": "/a.py"}', id="call_a", name="Read"),
                    tool_fragment(1, '{"command": "ls"}', id="call_b", name="Bash"),
                ]
            }
        ),
        chunk({}, "tool_calls"),
        usage_chunk(300, 40),
    ]
    events, _ = run_stream(chunks)
    check_block_order(events)
    assert shape(events) == [
        ("message_start",),
        ("start", 0, "text"),
        ("delta", 0, "Checking."),
        ("stop", 0),
        ("start", 1, "tool_use"),
        ("delta", 1, '{"file_path": "/a.py"}'),
        ("stop", 1),
        ("start", 2, "tool_use"),
        ("delta", 2, '{"command": "ls"}'),
        ("stop", 2),
        (
            "message_delta",
            "tool_use",
            {
                "input_tokens": 300,
                "output_tokens": 40,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        ),
        ("message_stop",),
    ]
    assert events[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "Read",
        "input": {},
    }
    message = sdk_message(events)
    assert [(b.type, getattr(b, "input", None)) for b in message.content] == [
        ("text", None),
        ("tool_use", {"file_path": "/a.py"}),
        ("tool_use", {"command": "ls"}),
    ]
    assert message.stop_reason == "tool_use"


def test_pitfall1_interleaved_tool_call_fragments_are_buffered_per_index() -> None:
    # Two parallel calls whose fragments interleave and split mid-token; id and name come in
    # the first fragment of each index only; the usage arrives in a trailing chunk.
    chunks = [
        chunk({"role": "assistant"}),
        chunk({"tool_calls": [tool_fragment(0, "", id="call_read", name="Read")]}),
        chunk({"tool_calls": [tool_fragment(0, '{"file_')]}),
        chunk({"tool_calls": [tool_fragment(1, '{"comm', id="call_bash", name="Bash")]}),
        chunk({"tool_calls": [tool_fragment(0, 'path": "/src/m')]}),
        chunk({"tool_calls": [tool_fragment(1, 'and": "git st'), tool_fragment(0, 'ain.py"}')]}),
        chunk({"tool_calls": [tool_fragment(1, 'atus"}')]}),
        chunk({}, "tool_calls"),
        usage_chunk(5000, 61),
    ]
    events, translator = run_stream(chunks)
    check_block_order(events)
    assert shape(events) == [
        ("message_start",),
        ("start", 0, "tool_use"),
        ("delta", 0, '{"file_path": "/src/main.py"}'),
        ("stop", 0),
        ("start", 1, "tool_use"),
        ("delta", 1, '{"command": "git status"}'),
        ("stop", 1),
        (
            "message_delta",
            "tool_use",
            {
                "input_tokens": 5000,
                "output_tokens": 61,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        ),
        ("message_stop",),
    ]
    message = sdk_message(events)
    assert [(b.id, b.name, b.input) for b in message.content] == [
        ("call_read", "Read", {"file_path": "/src/main.py"}),
        ("call_bash", "Bash", {"command": "git status"}),
    ]
    assert translator.problems == []


def test_stream_text_after_tool_calls_started_is_not_lost() -> None:
    chunks = [
        chunk({"tool_calls": [tool_fragment(0, '{"command": "ls"}', id="c1", name="Bash")]}),
        chunk({"content": "Running ls."}),
        chunk({}, "tool_calls"),
    ]
    events, _ = run_stream(chunks)
    check_block_order(events)
    message = sdk_message(events)
    assert [b.type for b in message.content] == ["text", "tool_use"]


def test_pitfall2_stream_tool_call_without_arguments() -> None:
    chunks = [
        chunk({"tool_calls": [tool_fragment(0, id="c1", name="TaskList")]}),
        chunk({"tool_calls": [tool_fragment(0, "")]}),
        chunk({}, "tool_calls"),
    ]
    events, translator = run_stream(chunks)
    assert ("delta", 0, "{}") in shape(events)
    assert sdk_message(events).content[0].input == {} and translator.problems == []


def test_pitfall3_stream_arguments_already_parsed_whole_calls_without_index() -> None:
    # Ollama-style: every call arrives whole in one chunk, arguments as an object.
    chunks = [
        chunk(
            {
                "tool_calls": [
                    {"id": "a", "function": {"name": "Read", "arguments": {"file_path": "/x"}}}
                ]
            }
        ),
        chunk(
            {
                "tool_calls": [
                    {"id": "b", "function": {"name": "Bash", "arguments": {"command": "ls"}}}
                ]
            }
        ),
        chunk({}, "stop"),
    ]
    events, _ = run_stream(chunks)
    message = sdk_message(events)
    assert [(b.id, b.input) for b in message.content] == [
        ("a", {"file_path": "/x"}),
        ("b", {"command": "ls"}),
    ]
    assert message.stop_reason == "tool_use"  # "stop" with tool calls


def test_pitfall4_stream_invalid_arguments_are_repaired_before_the_client_sees_them() -> None:
    chunks = [
        chunk({"tool_calls": [tool_fragment(0, '```json\n{"command"', id="c", name="Bash")]}),
        chunk({"tool_calls": [tool_fragment(0, ': "ls"}\n``` done')]}),
        chunk({"tool_calls": [tool_fragment(1, "{broken", id="d", name="Read")]}),
        chunk({}, "tool_calls"),
    ]
    events, translator = run_stream(chunks)
    message = sdk_message(events)  # the SDK would raise on invalid partial JSON
    assert [b.input for b in message.content] == [{"command": "ls"}, {}]
    assert len(translator.problems) == 1 and translator.problems[0].startswith("Read:")


def test_pitfall5_stream_text_tool_call_split_across_chunks() -> None:
    pieces = [
        "Let me check.\n<to",
        'ol_call>\n{"name": "Bash", ',
        '"arguments": {"command": "ls"}}\n</tool',
        "_call>",
    ]
    chunks = [chunk({"content": piece}) for piece in pieces] + [chunk({}, "stop")]
    events, _ = run_stream(chunks, tool_names=["Bash"])
    check_block_order(events)
    deltas = [s for s in shape(events) if s[0] == "delta"]
    assert deltas[0] == ("delta", 0, "Let me check.\n")  # streamed before the call completes
    message = sdk_message(events)
    assert message.content[0].text == "Let me check.\n"
    assert (message.content[1].name, message.content[1].input) == ("Bash", {"command": "ls"})
    assert message.stop_reason == "tool_use"


def test_pitfall5_stream_ordinary_code_fence_streams_through() -> None:
    pieces = ["Here:\n``", "`python\nprint(1)\n", "```\nDone."]
    events, _ = run_stream(
        [chunk({"content": p}) for p in pieces] + [chunk({}, "stop")], tool_names=["Bash"]
    )
    deltas = [s[2] for s in shape(events) if s[0] == "delta"]
    assert deltas[:2] == ["Here:\n", "```python\nprint(1)\n"]  # not held until the end
    assert "".join(deltas) == "".join(pieces)
    assert sdk_message(events).stop_reason == "end_turn"


def test_pitfall6_stream_missing_tool_ids_are_generated() -> None:
    chunks = [
        chunk({"tool_calls": [tool_fragment(0, "{}", name="TaskList")]}),
        chunk({}, "tool_calls"),
    ]
    events, _ = run_stream(chunks)
    block = events[1][1]["content_block"]
    assert block["id"].startswith("toolu_") and len(block["id"]) > 10


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_stream_reasoning_is_dropped_by_default(key: str) -> None:
    chunks = [
        chunk({key: "Let me think"}),
        chunk({key: " hard."}),
        chunk({"content": "42"}),
        chunk({}, "stop"),
    ]
    events, _ = run_stream(chunks)
    assert [s for s in shape(events) if s[0] in ("start", "delta")] == [
        ("start", 0, "text"),
        ("delta", 0, "42"),
    ]


def test_stream_reasoning_maps_to_a_thinking_block_when_asked() -> None:
    chunks = [
        chunk({"reasoning": "Let me think"}),
        chunk({"reasoning_content": " hard."}),
        chunk({"content": "42"}),
        chunk({}, "stop"),
    ]
    events, _ = run_stream(chunks, thinking=True)
    assert shape(events)[1:7] == [
        ("start", 0, "thinking"),
        ("delta", 0, "Let me think"),
        ("delta", 0, " hard."),
        ("stop", 0),
        ("start", 1, "text"),
        ("delta", 1, "42"),
    ]
    assert events[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    message = sdk_message(events)
    assert message.content[0].thinking == "Let me think hard."
    assert message.content[1].text == "42"


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("length", "max_tokens"), ("content_filter", "refusal"), (None, "end_turn")],
)
def test_stream_stop_reasons(finish: str | None, expected: str) -> None:
    chunks = [chunk({"content": "a"})] + ([chunk({}, finish)] if finish else [])
    events, _ = run_stream(chunks)
    assert shape(events)[-2][1] == expected


def test_stream_error_chunk_becomes_an_anthropic_error_event() -> None:
    translator = OpenAIStreamToAnthropic("m")
    events = translator.feed(chunk({"content": "partial"}))
    events += translator.feed({"error": {"message": "Provider overloaded", "code": 503}})
    assert shape(events)[-2:] == [("stop", 0), ("error",)]
    assert events[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Provider overloaded"},
    }
    assert translator.feed(chunk({"content": "more"})) == [] and translator.finish() == []
    with pytest.raises(anthropic.APIStatusError, match="Provider overloaded"):
        sdk_message(events)


def test_stream_pings_while_nothing_else_is_sent() -> None:
    fragments = [chunk({"tool_calls": [tool_fragment(0, '{"content": "', id="c", name="Write")]})]
    fragments += [chunk({"tool_calls": [tool_fragment(0, "x")]}) for _ in range(PING_EVERY * 2)]
    fragments += [chunk({"tool_calls": [tool_fragment(0, '"}')]}), chunk({}, "tool_calls")]
    events, _ = run_stream(fragments)
    assert [name for name, _ in events].count("ping") == 2
    assert sdk_message(events).content[0].input == {"content": "x" * PING_EVERY * 2}


def test_stream_finish_is_idempotent_and_works_on_an_empty_stream() -> None:
    translator = OpenAIStreamToAnthropic("m", input_tokens=9)
    events = translator.finish()
    assert shape(events) == [
        ("message_start",),
        ("message_delta", "end_turn", {"output_tokens": 0}),
        ("message_stop",),
    ]
    assert translator.finish() == [] and translator.feed(chunk({"content": "x"})) == []
    assert sdk_message(events).content == []


def test_stream_ignores_other_choices_and_unknown_delta_keys() -> None:
    extra = {"id": "x", "choices": [{"index": 1, "delta": {"content": "other"}}]}
    chunks = [chunk({"content": "a", "refusal": None, "audio": None}), extra, chunk({}, "stop")]
    events, _ = run_stream(chunks)
    assert sdk_message(events).content[0].text == "a"


def test_sse_bytes_format() -> None:
    raw = sse_bytes(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "é\n"}},
    )
    assert (
        raw
        == (
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":"é\\n"}}\n\n'
        ).encode()
    )


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "out_status", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (402, 402, "billing_error"),
        (403, 403, "permission_error"),
        (404, 404, "not_found_error"),
        (413, 413, "request_too_large"),
        (422, 400, "invalid_request_error"),
        (429, 429, "rate_limit_error"),
        (500, 500, "api_error"),
        (502, 502, "api_error"),
        (503, 529, "overloaded_error"),
        (504, 504, "timeout_error"),
        (529, 529, "overloaded_error"),
    ],
)
def test_error_status_mapping(status: int, out_status: int, kind: str) -> None:
    upstream = {"error": {"message": "boom", "type": "x", "code": None}}
    got_status, got = openai_error_to_anthropic(status, json.dumps(upstream).encode())
    assert got_status == out_status
    assert got == {"type": "error", "error": {"type": kind, "message": "boom"}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"error": "model \\"qwen9\\" not found, try pulling it first"}',
            'model "qwen9" not found, try pulling it first',
        ),  # Ollama
        ("<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        ('{"detail": "Not Found"}', "Not Found"),  # FastAPI-style servers
        ("", "upstream returned HTTP 404"),
    ],
)
def test_error_bodies_of_other_shapes(body: str, message: str) -> None:
    _, got = openai_error_to_anthropic(404, body)
    assert got["error"] == {"type": "not_found_error", "message": message}


def test_error_messages_never_echo_keys() -> None:
    body = json.dumps(
        {
            "error": {
                "message": (
                    "Incorrect API key provided: sk-proj-AbCdEf1234567890xyz. Header was "
                    "'Authorization: Bearer sk-or-v1-0123456789abcdef' and api_key=secret123&x=1"
                )
            }
        }
    )
    _, got = openai_error_to_anthropic(401, body)
    message = got["error"]["message"]
    for secret in ("AbCdEf1234567890xyz", "0123456789abcdef", "secret123"):
        assert secret not in message
    assert "sk-proj-***" in message and "Bearer ***" in message and "x=1" in message


def test_context_overflow_is_worded_like_anthropic_for_auto_compaction() -> None:
    vllm = {
        "error": {
            "message": "This model's maximum context length is 4096 tokens. However, "
            "you requested 5000 tokens.",
            "type": "BadRequestError",
        }
    }
    _, got = openai_error_to_anthropic(400, json.dumps(vllm))
    assert got["error"]["message"].startswith("prompt is too long: This model's maximum")
    llama = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 9000,
            "n_ctx": 8192,
        }
    }
    _, got = openai_error_to_anthropic(400, json.dumps(llama))
    assert got["error"]["message"].startswith("prompt is too long: 9000 tokens > 8192 maximum")


def test_error_with_success_status_uses_the_error_code() -> None:
    status, got = openai_error_to_anthropic(200, b'{"error": {"message": "slow", "code": 429}}')
    assert status == 429 and got["error"]["type"] == "rate_limit_error"
    status, got = openai_error_to_anthropic(200, b'{"error": {"message": "?", "code": "x"}}')
    assert status == 500 and got["error"]["type"] == "api_error"


# --- against a real OpenAI-compatible server (llama.cpp + SmolLM2 135M) --------------------


def small_claude_code_body(stream: bool) -> dict[str, Any]:
    """Claude Code's shape (system blocks, reminder, trailing system message, thinking,
    metadata, cache_control) at a size a 2048-token context holds."""
    claude = claude_code_body("Say hello.", tool_count=0, stream=stream)
    claude["system"] = [dict(block, text=block["text"][:200]) for block in claude["system"]]
    claude["max_tokens"] = 8
    claude["temperature"] = 0
    return claude


def test_real_llama_cpp_stream_translates_to_a_valid_anthropic_stream(llama_server: Any) -> None:
    request = anthropic_to_openai_request(small_claude_code_body(True), llama_server.model)
    translator = OpenAIStreamToAnthropic("claude-opus-4-8")
    events: list[tuple[str, dict]] = []
    with (
        httpx2.Client(base_url=llama_server.v1_url, timeout=60) as client,
        client.stream("POST", "/chat/completions", json=request) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            events += translator.feed(json.loads(data))
    events += translator.finish()
    check_block_order(events)
    message = sdk_message(events)
    assert message.model == "claude-opus-4-8" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert 0 < message.usage.output_tokens <= 8
    assert message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0) > 0


def test_real_llama_cpp_completion_and_context_overflow(llama_server: Any) -> None:
    with httpx2.Client(base_url=llama_server.v1_url, timeout=60) as client:
        request = anthropic_to_openai_request(small_claude_code_body(False), llama_server.model)
        response = client.post("/chat/completions", json=request)
        assert response.status_code == 200
        message = openai_to_anthropic_response(response.json(), "claude-opus-4-8")
        anthropic.types.Message.model_validate(message)
        assert message["content"][0]["text"] and 0 < message["usage"]["output_tokens"] <= 8
        # A prompt over the 2048-token context: the error must reach Claude Code worded so
        # that its auto-compaction recognizes it.
        long_body = small_claude_code_body(False)
        long_body["messages"][0]["content"][1]["text"] = "word " * 4000
        big = anthropic_to_openai_request(long_body, llama_server.model)
        response = client.post("/chat/completions", json=big)
    status, error = openai_error_to_anthropic(response.status_code, response.content)
    assert status == 400 and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith("prompt is too long: "), error
    assert " tokens > 2048 maximum" in error["error"]["message"]
