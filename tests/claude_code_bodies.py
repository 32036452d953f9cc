"""Request bodies shaped like the ones the real Claude Code CLI sends (see shared OBSERVED.md).

Written by the project from the observed structure, not copied from captures: a `system` array of
three text blocks (attribution, identity, main prompt), a first user turn that opens with a
`<system-reminder>` block, a trailing `role: "system"` message (the agent list, where hook context
lands), 24 tools, `metadata.user_id` as a JSON string, adaptive thinking, and so on. The default
body is about 80 KB, like the CLI's main requests.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

TOOL_NAMES = (
    "Agent",
    "Bash",
    "CronCreate",
    "CronDelete",
    "CronList",
    "Edit",
    "EnterWorktree",
    "ExitWorktree",
    "NotebookEdit",
    "Read",
    "ReportFindings",
    "ScheduleWakeup",
    "SendMessage",
    "Skill",
    "TaskCreate",
    "TaskGet",
    "TaskList",
    "TaskOutput",
    "TaskStop",
    "TaskUpdate",
    "WebFetch",
    "WebSearch",
    "Workflow",
    "Write",
)

REMINDER = (
    "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n"
    "# currentDate\nToday's date is 2026-11-27.\n\n      IMPORTANT: this context may or may not "
    "be relevant to your tasks. You should not respond to this context unless it is highly "
    "relevant to your task.\n</system-reminder>\n\n"
)

AGENT_LIST = (
    "Available agent types for the Agent tool:\n"
    "- general-purpose: research and multi-step tasks (Tools: *)\n"
    "- Explore: read-only search agent for broad fan-out searches (Tools: Read, Grep, Glob)\n"
    "- Plan: software architect agent for designing implementation plans (Tools: *)\n"
)

# A tiny valid PNG (1x1 pixel), for image-bearing requests.
PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def _filler(topic: str, chars: int) -> str:
    sentence = (
        f"When working with {topic}, follow the conventions of the surrounding code, prefer "
        "small focused changes, explain what you did and why, and never invent file contents. "
    )
    return (sentence * (chars // len(sentence) + 1))[:chars]


def tool_definition(name: str, description_chars: int = 1800) -> dict[str, Any]:
    return {
        "name": name,
        "description": _filler(f"the {name} tool", description_chars),
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": f"What {name} should do"},
                "timeout": {"type": "number", "description": "Milliseconds before giving up"},
                "description": {"type": "string", "description": "A short label for the user"},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    }


def system_blocks() -> list[dict[str, Any]]:
    return [
        {
            "type": "text",
            "text": "x-anthropic-billing-header: cc_version=2.1.197.1; cc_entrypoint=sdk-cli;",
        },
        {
            "type": "text",
            "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
            "cache_control": {"type": "ephemeral"},
        },
        {
            "type": "text",
            "text": "\nYou are an interactive agent that helps users with software engineering "
            "tasks.\n" + _filler("a software project", 5700),
            "cache_control": {"type": "ephemeral"},
        },
    ]


def claude_code_body(
    prompt: str = "say hi",
    *,
    model: str = "claude-opus-4-8",
    session_id: str | None = None,
    tool_count: int = 24,
    tool_description_chars: int = 2600,
    extra_tools: list[dict[str, Any]] | None = None,
    hook_context: str | None = None,
    stream: bool = True,
) -> dict[str, Any]:
    """A first-turn main request: reminder + prompt, trailing system message, tools."""
    session_id = session_id or str(uuid.uuid4())
    trailing = AGENT_LIST
    if hook_context:
        trailing += f"\nUserPromptSubmit hook additional context: {hook_context}\n"
    tools = [tool_definition(name, tool_description_chars) for name in TOOL_NAMES[:tool_count]]
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": REMINDER},
                    {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}},
                ],
            },
            {"role": "system", "content": trailing},
        ],
        "system": system_blocks(),
        "tools": tools + list(extra_tools or []),
        "metadata": {
            "user_id": json.dumps(
                {"device_id": "d" * 64, "account_uuid": "", "session_id": session_id},
                separators=(",", ":"),
            )
        },
        "max_tokens": 64000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
    }
    if stream:
        body["stream"] = True
    return body


def with_tool_round_trip(
    body: dict[str, Any], tool_name: str = "Bash", result: Any = "hello-from-bash"
) -> dict[str, Any]:
    """The follow-up request after the model called a tool: assistant tool_use, user tool_result."""
    tool_id = "toolu_" + uuid.uuid4().hex[:24]
    messages = list(body["messages"])
    messages.insert(
        1,
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": tool_name,
                    "input": {"command": "echo hello-from-bash"},
                }
            ],
        },
    )
    messages.insert(
        2,
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_id,
                    "content": result,
                    "is_error": False,
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
    )
    return {**body, "messages": messages}


def title_generation_body(
    session_text: str, model: str = "claude-haiku-4-5-20251001"
) -> dict[str, Any]:
    """Claude Code's background title request: structured output, no tools, small model."""
    return {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": f"<session>\n{session_text}\n</session>\n\nWrite the title in the "
                        "language the user wrote in.",
                    }
                ],
            }
        ],
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.1;"},
            {
                "type": "text",
                "text": "Generate a concise, sentence-case title for this coding session.",
            },
        ],
        "tools": [],
        "metadata": {
            "user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": "s"})
        },
        "max_tokens": 32000,
        "output_config": {
            "effort": "high",
            "format": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}},
                    "required": ["title"],
                    "additionalProperties": False,
                },
            },
        },
        "stream": True,
    }


def image_block() -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1},
    }
