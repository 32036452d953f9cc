"""A Claude Code coding session through a real `hybrid-router proxy`, per model profile.

What a user in proxy mode gets: 20 turns in the mix the seed promises (file lookups, code
generation, tests, docs, refactors, one explanation, and three turns that must stay premium: a
security review, a production incident, a web search). Each turn is what the real CLI sends
(shared OBSERVED.md; tests/claude_code_bodies.py): the prompt hook runs first (the installed
`hybrid-router hook UserPromptSubmit`, which pins the turn), then the main request — system
prompt and 24 tools, about 20K tokens, plus the whole history so far — then the tool-result
continuation after the model's tool call. Every answer, tool call and tool result stays in the
history, which grows turn by turn past 40K tokens; the session also sends its title request.

The backends are fakes that follow their protocols (tests/fakes/):
- Ollama runs every request with a context of 4096 tokens unless the request sets `num_ctx`
  (native `/api/chat` only), as real Ollama does below 24 GiB of VRAM, and drops what does not
  fit; a reasoning model (gpt-oss) answers with thinking.
- Anthropic reports usage from the request's size and enforces its history rules: it refuses a
  thinking block it did not sign, and a request with thinking enabled whose last assistant turn
  used tools without starting with a thinking block.
- OpenRouter serves the tiers' `:free` fallbacks with their real windows.

For each profile it prints: the share of requests answered free, the savings `hybrid-router
stats` reports, the premium-turn requests that reached Anthropic, the requests larger than the
context they ran with (truncated), and the requests Anthropic refused.

    .venv/bin/python bench/session_savings.py [--profiles 8gb,16gb,32gb,64gb,seed]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import httpx2 as httpx  # noqa: E402
import proxy_overhead as po  # noqa: E402 - its process helpers
from claude_code_bodies import (  # noqa: E402
    AGENT_LIST,
    REMINDER,
    claude_code_body,
    title_generation_body,  # noqa: E402
)
from fakes import fake_anthropic as anthropic_fake  # noqa: E402
from fakes import fake_ollama as ollama_fake  # noqa: E402
from fakes import fake_openrouter as openrouter_fake  # noqa: E402

SCRIPT = Path(sys.executable).parent / "hybrid-router"
VERBOSE = False
CLAUDE_MODEL = "claude-opus-4-8"
OLLAMA_DEFAULT_CONTEXT = 4096  # Ollama's OLLAMA_CONTEXT_LENGTH below 24 GiB of VRAM
CHARS_PER_TOKEN = 3.5
# A file's text as a Read tool result: about 900 tokens, so the history grows past 40K.
FILE_TEXT = "\n".join(
    f"    def step_{i}(self, value: int) -> int:\n        return value * {i} + self.offset"
    for i in range(45)
)


@dataclass(frozen=True)
class Turn:
    kind: str
    prompt: str
    tool: str
    arguments: dict[str, Any]
    premium: bool = False

    @property
    def tool_input(self) -> dict[str, Any]:
        """The call as the tools' schema takes it (tests/claude_code_bodies.py: a `command`
        string and nothing else required): what a model that calls tools well sends."""
        return {"command": " ".join(f"{k}={v}" for k, v in self.arguments.items())}


TURNS = (
    Turn(
        "file",
        "list the files in src/ and show me where the config is loaded",
        "Bash",
        {"command": "ls src"},
    ),
    Turn(
        "code",
        "write a function that parses ISO durations in utils/durations.py",
        "Write",
        {"file_path": "utils/durations.py", "content": "def parse(): ..."},
    ),
    Turn(
        "test",
        "write unit tests for the duration parser",
        "Write",
        {"file_path": "tests/test_durations.py", "content": "def test(): ..."},
    ),
    Turn(
        "file", "find where the retry policy is defined", "Bash", {"command": "grep -rn retry src"}
    ),
    Turn(
        "refactor",
        "refactor the retry policy into a small class",
        "Edit",
        {"file_path": "src/retry.py", "old_string": "a", "new_string": "b"},
    ),
    Turn(
        "explain",
        "explain how the request pipeline works, from the router to the handlers",
        "Read",
        {"file_path": "src/pipeline.py"},
    ),
    Turn(
        "docs",
        "add docstrings to the public functions in src/retry.py",
        "Edit",
        {"file_path": "src/retry.py", "old_string": "c", "new_string": "d"},
    ),
    Turn(
        "security",
        "review the login handler for SQL injection and leaked credentials",
        "Read",
        {"file_path": "src/auth/login.py"},
        premium=True,
    ),
    Turn(
        "code",
        "implement a cache for the user lookups in src/users.py",
        "Edit",
        {"file_path": "src/users.py", "old_string": "e", "new_string": "f"},
    ),
    Turn(
        "test",
        "write tests for the user cache",
        "Write",
        {"file_path": "tests/test_users.py", "content": "def test(): ..."},
    ),
    Turn(
        "file",
        "show me the contents of the settings module",
        "Read",
        {"file_path": "src/settings.py"},
    ),
    Turn(
        "critical",
        "production is down after the deploy and users report data loss, what do we roll back?",
        "Bash",
        {"command": "git log -5"},
        premium=True,
    ),
    Turn(
        "refactor",
        "rename the variable tmp to buffer across the parser",
        "Edit",
        {"file_path": "src/parser.py", "old_string": "tmp", "new_string": "buffer"},
    ),
    Turn(
        "code",
        "add a --verbose flag to the CLI entry point",
        "Edit",
        {"file_path": "src/cli.py", "old_string": "g", "new_string": "h"},
    ),
    Turn(
        "docs",
        "update the README section about configuration",
        "Edit",
        {"file_path": "README.md", "old_string": "i", "new_string": "j"},
    ),
    Turn(
        "web",
        "search the web for the latest httpx2 release notes",
        "WebSearch",
        {"query": "httpx2 release notes"},
        premium=True,
    ),
    Turn(
        "test",
        "fix the failing test in tests/test_parser.py",
        "Bash",
        {"command": "pytest tests/test_parser.py"},
    ),
    Turn("file", "locate the logging setup", "Bash", {"command": "grep -rn logging src"}),
    Turn(
        "refactor",
        "split the long handler function into smaller ones",
        "Edit",
        {"file_path": "src/handlers.py", "old_string": "k", "new_string": "l"},
    ),
    Turn(
        "code",
        "write a migration that adds an index on users.email",
        "Write",
        {"file_path": "migrations/0004.py", "content": "def up(): ..."},
    ),
)


# --- the fakes' behaviour ------------------------------------------------------------------------


def _last_is_tool_result(messages: list[Any]) -> bool:
    """Whether the conversation's last message carries tool results (any dialect)."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") == "system":
            continue
        if message.get("role") == "tool":
            return True
        content = message.get("content")
        return isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
    return False


def _turn_for(text: str) -> Turn | None:
    for turn in TURNS:
        if turn.prompt in text:
            return turn
    return None


def _latest_prompt(messages: list[Any]) -> str:
    """The newest user text in a body of any dialect (the turn it belongs to)."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str) and _turn_for(content):
            return content
        if isinstance(content, list):
            for block in content:
                text = block.get("text") if isinstance(block, dict) else None
                if isinstance(text, str) and _turn_for(text):
                    return text
    return ""


ANSWER = "Done: the change is in place and the tests pass. " * 6


def local_reply(reasoning: bool) -> Any:
    """A local model: a tool call for a new prompt, a short answer after the tool result."""

    def reply(body: dict[str, Any]) -> ollama_fake.Reply:
        messages = body.get("messages") or []
        turn = _turn_for(_latest_prompt(messages))
        # A reasoning model thinks on every request; any model reasons through the explanation.
        thinks = reasoning or (turn is not None and turn.kind == "explain")
        thinking = "Let me think about which file to look at first." if thinks else ""
        if turn is not None and not _last_is_tool_result(messages):
            return ollama_fake.Reply(
                thinking=thinking,
                tool_calls=[ollama_fake.ToolCall(turn.tool, dict(turn.tool_input))],
            )
        return ollama_fake.Reply(thinking=thinking, text=ANSWER)

    return reply


def cloud_reply(body: dict[str, Any]) -> openrouter_fake.Reply:
    """A free cloud model: the same behaviour, in OpenRouter's fake."""
    messages = body.get("messages") or []
    turn = _turn_for(_latest_prompt(messages))
    if turn is not None and not _last_is_tool_result(messages):
        call = openrouter_fake.ToolCall(turn.tool, dict(turn.tool_input))
        return openrouter_fake.Reply(tool_calls=[call])
    return openrouter_fake.Reply(text=ANSWER)


class AnthropicRules:
    """The fake Anthropic's answers, and the history rules it enforces (see the docstring)."""

    SIGNATURE = "bench-signed"

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, rec: Any) -> anthropic_fake.Reply:
        body = rec.body
        messages = body.get("messages") or []
        problem = self.problem(body, messages)
        if problem:
            self.refused.append(problem)
            return anthropic_fake.error(400, "invalid_request_error", problem)
        thinking_on = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") in (
            "enabled",
            "adaptive",
        )
        turn = _turn_for(_latest_prompt(messages))
        blocks: list[dict[str, Any]] = []
        if thinking_on:
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": "Considering the request.",
                    "signature": self.SIGNATURE,
                }
            )
        if turn is not None and not _last_is_tool_result(messages):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:20]}",
                    "name": turn.tool,
                    "input": dict(turn.tool_input),
                }
            )
            return anthropic_fake.Reply(content=blocks, stop_reason="tool_use")
        blocks.append({"type": "text", "text": "Reviewed and answered in full. " * 8})
        return anthropic_fake.Reply(content=blocks)

    def problem(self, body: dict[str, Any], messages: list[Any]) -> str | None:
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") != "assistant":
                continue
            content = message.get("content")
            for position, block in enumerate(content if isinstance(content, list) else []):
                if block.get("type") == "thinking" and block.get("signature") != self.SIGNATURE:
                    return (
                        f"messages.{index}.content.{position}: Invalid `signature` in "
                        "`thinking` block"
                    )
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            if _last_is_tool_result(messages):
                assistant = next(
                    (
                        m
                        for m in reversed(messages)
                        if isinstance(m, dict) and m.get("role") == "assistant"
                    ),
                    None,
                )
                content = assistant.get("content") if assistant else None
                if (
                    isinstance(content, list)
                    and content
                    and any(b.get("type") == "tool_use" for b in content)
                    and content[0].get("type") not in ("thinking", "redacted_thinking")
                ):
                    return (
                        "messages: when thinking is enabled, a final assistant message must "
                        "start with a thinking block (found tool_use)"
                    )
        return None


# --- the session ---------------------------------------------------------------------------------


def read_sse(response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
    """The assistant content blocks of a streamed answer, and an error message if it had one."""
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    error_text = None
    event = ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        if not line.startswith("data:"):
            continue
        data = json.loads(line[5:])
        if event == "content_block_start":
            blocks.append(dict(data["content_block"]))
        elif event == "content_block_delta":
            delta = data["delta"]
            block = blocks[data["index"]]
            if delta["type"] == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif event == "error":
            error_text = json.dumps(data)
    for index, text in partial.items():
        blocks[index]["input"] = json.loads(text) if text else {}
    return blocks, error_text


@dataclass
class SessionResult:
    profile: str
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    premium_requests: int = 0
    tokens_at_end: int = 0


def run_session(proxy: str, environ: dict[str, str], result: SessionResult) -> None:
    session = str(uuid.uuid4())
    headers = {
        "x-api-key": "sk-ant-bench",
        "anthropic-version": "2023-06-01",
        "x-claude-code-session-id": session,
    }
    history: list[dict[str, Any]] = []
    base = claude_code_body("", model=CLAUDE_MODEL, session_id=session)
    with httpx.Client(base_url=proxy, headers=headers, timeout=60.0) as client:
        title = title_generation_body(TURNS[0].prompt)
        _send(client, title, result, premium=False)
        for number, turn in enumerate(TURNS):
            prompt_id = str(uuid.uuid4())
            hook = {
                "session_id": session,
                "prompt_id": prompt_id,
                "prompt": turn.prompt,
                "cwd": str(ROOT),
                "hook_event_name": "UserPromptSubmit",
                "transcript_path": "/dev/null",
                "permission_mode": "default",
            }
            subprocess.run(
                [str(SCRIPT), "hook", "UserPromptSubmit"],
                input=json.dumps(hook),
                text=True,
                env=environ,
                capture_output=True,
                check=True,
                timeout=30,
            )
            opening = [{"type": "text", "text": REMINDER}] if number == 0 else []
            history.append(
                {"role": "user", "content": [*opening, {"type": "text", "text": turn.prompt}]}
            )
            for _ in range(3):  # the prompt, then one tool round trip (a model may call again)
                body = {**base, "messages": [*history, {"role": "system", "content": AGENT_LIST}]}
                blocks = _send(client, body, result, premium=turn.premium)
                history.append(
                    {
                        "role": "assistant",
                        "content": blocks or [{"type": "text", "text": "(no answer)"}],
                    }
                )
                calls = [b for b in blocks if b.get("type") == "tool_use"]
                if not calls:
                    break
                history.append(
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": call["id"], "content": FILE_TEXT}
                            for call in calls
                        ],
                    }
                )
        final = {**base, "messages": history}
        result.tokens_at_end = int(len(json.dumps(final)) / CHARS_PER_TOKEN)


def _send(
    client: httpx.Client, body: dict[str, Any], result: SessionResult, premium: bool
) -> list[dict[str, Any]]:
    result.requests += 1
    result.premium_requests += premium
    with client.stream("POST", "/v1/messages", json=body) as response:
        if response.status_code != 200:
            response.read()
            result.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            return []
        blocks, error_text = read_sse(response)
    if error_text:
        result.errors.append(error_text[:200])
    return blocks


# --- running a profile ---------------------------------------------------------------------------


def profile_names() -> list[str]:
    listed = subprocess.run(
        [str(SCRIPT), "profiles", "--json"], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        return ["default"]  # a version without profiles: its embedded default
    data = json.loads(listed.stdout)
    entries = data.get("profiles", data) if isinstance(data, dict) else data
    return [entry["name"] for entry in entries]


def write_config(home: Path, profile: str, environ: dict[str, str]) -> dict[str, Any]:
    args = ["init"] if profile == "default" else ["init", "--profile", profile]
    subprocess.run([str(SCRIPT), *args], env=environ, capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads((home / "router-config.json").read_text())
    data.setdefault("proxy", {})["probeOnStart"] = False  # the fakes are known to work
    (home / "router-config.json").write_text(json.dumps(data, indent=2))
    return data


def local_models(config: dict[str, Any]) -> list[ollama_fake.FakeModel]:
    kinds = {name: p["kind"] for name, p in config["providers"].items()}
    models: dict[str, ollama_fake.FakeModel] = {}
    for tier in config["tiers"].values():
        if kinds.get(tier["provider"]) != "ollama" or tier["model"] in models:
            continue
        reasoning = any(family in tier["model"] for family in ("gpt-oss", "-r1", "qwen3.5"))
        models[tier["model"]] = ollama_fake.FakeModel(
            tier["model"],
            context_length=max(tier["contextWindow"], 131072),
            capabilities=["completion", "tools", *(["thinking"] if reasoning else [])],
            reply=local_reply(reasoning),
        )
    return list(models.values())


def free_models(config: dict[str, Any]) -> list[openrouter_fake.FakeModel]:
    found: dict[str, openrouter_fake.FakeModel] = {}
    for tier in config["tiers"].values():
        for fallback in tier.get("fallbacks", []):
            model = fallback.get("model") or ""
            if model.endswith(":free"):
                found[model] = openrouter_fake.FakeModel(
                    model,
                    context_length=fallback.get("contextWindow") or 131072,
                    reply=cloud_reply,
                )
    return list(found.values())


@contextmanager
def running_proxy(environ: dict[str, str]) -> Iterator[str]:
    port = po.free_port()
    process, url = po.spawn_http_server(
        [str(SCRIPT), "proxy", "--port", str(port)],
        port,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # said when the proxy does not start
    )
    try:
        yield url
    finally:
        po.stop_process(process)


@dataclass
class Figures:
    profile: str
    requests: int
    free: int
    saved_percent: float
    premium_requests: int
    premium_answered: int
    truncated: int
    refused: int
    errors: int
    tokens_at_end: int


def measure(profile: str) -> Figures:
    with tempfile.TemporaryDirectory(prefix="session-bench-") as scratch, ExitStack() as stack:
        home = Path(scratch) / "home"
        environ = {**os.environ, "HYBRID_ROUTER_HOME": str(home), "HOME": scratch}
        config = write_config(home, profile, environ)
        rules = AnthropicRules()
        ollama = stack.enter_context(ollama_fake.FakeOllama(local_models(config)))
        claude = stack.enter_context(anthropic_fake.FakeAnthropic(handler=rules))
        router = stack.enter_context(openrouter_fake.FakeOpenRouter(free_models(config)))
        environ |= {
            "OLLAMA_HOST": ollama.url,
            "HYBRID_ROUTER_ANTHROPIC_URL": claude.url,
            "HYBRID_ROUTER_OPENROUTER_URL": router.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "OPENROUTER_API_KEY": openrouter_fake.DEFAULT_KEY,
        }
        result = SessionResult(profile)
        with running_proxy(environ) as url:
            run_session(url, environ, result)
        rows = [
            json.loads(line)
            for line in subprocess.run(
                [str(SCRIPT), "logs", "--json", "--source", "proxy", "-n", "100000"],
                env=environ,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.splitlines()
        ]
        stats = json.loads(
            subprocess.run(
                [str(SCRIPT), "stats", "--json"],
                env=environ,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        free = sum(1 for r in rows if r["outcome"] in ("ok", "fallback") and not r["cost"])
        premium_answered = sum(
            1
            for rec in claude.main_requests()
            if (turn := _turn_for(_latest_prompt(rec.body.get("messages") or []))) is not None
            and turn.premium
        )
        truncated = 0
        for rec in ollama.requests:
            if rec.method != "POST" or not rec.path.endswith(
                ("/api/chat", "/chat/completions", "/v1/messages")
            ):
                continue
            body = rec.body if isinstance(rec.body, dict) else {}
            window = (body.get("options") or {}).get("num_ctx") or OLLAMA_DEFAULT_CONTEXT
            size = sum(len(json.dumps(body.get(k) or "")) for k in ("system", "messages", "tools"))
            truncated += size / CHARS_PER_TOKEN > window
        if VERBOSE:
            for r in rows:
                print(
                    f"    {r['rule']:16} {r['provider']:10} {r['model']:32} {r['outcome']:9} "
                    f"{r['error_class'] or '':18} ~{r['estimated_tokens'] or 0:,} tok"
                )
        return Figures(
            profile,
            len(rows),
            free,
            stats["savings_percent"],
            result.premium_requests,
            premium_answered,
            truncated,
            len(rules.refused),
            len(result.errors),
            result.tokens_at_end,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", help="comma-separated profile names (default: all)")
    parser.add_argument("--rows", action="store_true", help="print every proxy row")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.rows
    names = args.profiles.split(",") if args.profiles else profile_names()
    print(f"A {len(TURNS)}-turn Claude Code session through hybrid-router proxy, per profile")
    header = (
        "profile",
        "requests",
        "free",
        "saved",
        "premium->Anthropic",
        "truncated",
        "refused",
        "errors",
        "history",
    )
    print("  ".join(f"{h:>18}" if i else f"{h:<10}" for i, h in enumerate(header)))
    for name in names:
        f = measure(name)
        share = 100 * f.free / f.requests if f.requests else 0.0
        cells = (
            f"{f.requests}",
            f"{f.free} ({share:.0f} %)",
            f"{f.saved_percent:.0f} %",
            f"{f.premium_answered} of {f.premium_requests}",
            f"{f.truncated}",
            f"{f.refused}",
            f"{f.errors}",
            f"~{f.tokens_at_end:,} tok",
        )
        print(f"{name:<10}" + "".join(f"  {c:>18}" for c in cells))
    print(
        "Targets, 32gb profile: >= 80 % of requests free, >= 70 % saved, every premium-turn "
        "request answered by Anthropic, 0 truncated, 0 refused."
    )


if __name__ == "__main__":
    main()
