"""What a prompt or an Anthropic Messages request says about itself, as routing inputs.

Pure and stdlib only (the hooks import it on every event). It never raises on a strange body:
a field of the wrong type is simply not a signal. The proxy validates bodies separately.

Token estimate (documented in the README): count characters of everything the model reads —
system text, message text, tool calls and results, thinking, and the tool definitions serialized
as JSON — divide by 3.5 and round up; add 1,600 tokens per image (Anthropic's figure for an image
of about 1.15 megapixels, the largest it keeps unscaled), 1 token per 32 characters of a base64
PDF, and 4 tokens of framing per message. 3.5 characters a token is a little pessimistic for
English prose and about right for code and JSON: an estimate that runs high sends a request up a
tier, one that runs low lets a local server truncate it silently.
"""

from __future__ import annotations

from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the prompt hook more than it can afford
    from collections.abc import Mapping
    from types import ModuleType
    from typing import Any

CHARS_PER_TOKEN = 3.5
IMAGE_TOKENS = 1600
BASE64_DOCUMENT_CHARS_PER_TOKEN = 32
MESSAGE_OVERHEAD_TOKENS = 4

SESSION_HEADER = "x-claude-code-session-id"
# Claude Code's `metadata.user_id` is a JSON object of a few ids (about 200 characters); a
# longer one is not read for a session.
MAX_USER_ID_CHARS = 2048
SERVER_TOOL_PREFIXES = ("web_search_", "web_fetch_")

# Text Claude Code wraps around the user's words: reminders it injects, and hook output that
# older versions appended to the prompt itself. None of it is what the user asked.
_INJECTED_TAGS = ("system-reminder", "user-prompt-submit-hook")
_HEX_AND_DASH = frozenset("0123456789abcdefABCDEF-")


class Signals(Record, frozen=True):
    """Routing inputs. `text` is the user's latest real prompt text ("" when there is none).

    `is_tool_continuation`: the last user turn only carries tool results (the turn started
    earlier, with `text`). `is_structured_without_tools`: structured JSON output asked for with
    no tools offered, which is how Claude Code asks for session titles.
    """

    text: str
    estimated_tokens: int
    requested_model: str | None = None
    server_tools: tuple[str, ...] = ()
    tool_count: int = 0
    thinking: str | None = None  # "enabled" or "adaptive" when the request asks for thinking
    has_images: bool = False
    session_id: str | None = None
    max_tokens: int | None = None
    is_tool_continuation: bool = False
    is_structured_without_tools: bool = False
    from_request: bool = False


def estimate_text_tokens(text: str) -> int:
    return -(-len(text) * 2 // 7) if text else 0  # ceil(len / 3.5) in integers


def signals_from_prompt(prompt: str, session_id: str | None = None) -> Signals:
    """Signals for a bare prompt (the CLI's `route PROMPT`, the UserPromptSubmit hook)."""
    text = strip_injected(prompt)
    return Signals(
        text=text,
        estimated_tokens=estimate_text_tokens(prompt) + MESSAGE_OVERHEAD_TOKENS,
        session_id=session_id,
    )


def strip_injected(text: str) -> str:
    """`text` without `<system-reminder>...</system-reminder>` (and older hook output) blocks.

    The tags are matched as Claude Code writes them (lower case): a few scans at C speed, so a
    prompt of many megabytes costs milliseconds."""
    if "<" not in text:
        return text.strip()
    for tag in _INJECTED_TAGS:
        opening, closing = f"<{tag}>", f"</{tag}>"
        kept: list[str] = []
        position = 0
        while (start := text.find(opening, position)) >= 0:
            end = text.find(closing, start)
            if end < 0:
                break
            kept.append(text[position:start])
            position = end + len(closing)
        if kept:
            text = "".join(kept) + text[position:]
    return text.strip()


def _json() -> ModuleType:  # not for a bare prompt: the prompt hook never pays for importing it
    import json

    return json


def signals_from_request(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Signals:
    """Signals for an Anthropic Messages request body, as Claude Code (or any client) sends it."""
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    tools = body.get("tools")
    tools = tools if isinstance(tools, list) else []

    counter = _Counter()
    counter.add_system(body.get("system"))
    for message in messages:
        if isinstance(message, dict):
            counter.add_content(message.get("content"))
    tool_chars = sum(_tool_definition_chars(tool) for tool in tools)
    estimated = (
        -(-(counter.chars + tool_chars) * 2 // 7)
        + counter.images * IMAGE_TOKENS
        + counter.document_chars // BASE64_DOCUMENT_CHARS_PER_TOKEN
        + len(messages) * MESSAGE_OVERHEAD_TOKENS
    )

    text, continuation = latest_user_text(messages)
    model = body.get("model")
    thinking = body.get("thinking")
    thinking_type = thinking.get("type") if isinstance(thinking, dict) else None
    max_tokens = body.get("max_tokens")
    output_config = body.get("output_config")
    output_format = output_config.get("format") if isinstance(output_config, dict) else None
    return Signals(
        text=text,
        estimated_tokens=estimated,
        requested_model=model if isinstance(model, str) else None,
        server_tools=_server_tools(tools),
        tool_count=len(tools),
        thinking=thinking_type if thinking_type in ("enabled", "adaptive") else None,
        has_images=counter.images > 0,
        session_id=session_id_of(body, headers),
        max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
        is_tool_continuation=continuation,
        is_structured_without_tools=isinstance(output_format, dict) and not tools,
        from_request=True,
    )


class _Counter:
    """Accumulates the characters the model reads, and the images and documents it sees."""

    __slots__ = ("chars", "document_chars", "images")

    def __init__(self) -> None:
        self.chars = 0
        self.images = 0
        self.document_chars = 0

    def add_system(self, system: Any) -> None:
        if isinstance(system, str):
            self.chars += len(system)
        elif isinstance(system, list):
            self.add_content(system)

    def add_content(self, content: Any) -> None:
        if isinstance(content, str):
            self.chars += len(content)
            return
        if not isinstance(content, list):
            return
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                self._add_str(block.get("text"))
            elif kind == "tool_result":
                self.add_content(block.get("content"))
            elif kind == "tool_use" or kind == "server_tool_use":
                self._add_str(block.get("name"))
                self.chars += len(
                    _json().dumps(block.get("input"), ensure_ascii=False, default=str)
                )
            elif kind == "thinking":
                self._add_str(block.get("thinking"))
            elif kind == "image":
                self.images += 1
            elif kind == "document":
                self._add_document(block.get("source"))
            elif kind is not None and kind != "redacted_thinking":
                # Server tool results and future block types: count what they hold.
                self.chars += len(_json().dumps(block, ensure_ascii=False, default=str))

    def _add_str(self, value: Any) -> None:
        if isinstance(value, str):
            self.chars += len(value)

    def _add_document(self, source: Any) -> None:
        if not isinstance(source, dict):
            return
        data = source.get("data")
        if source.get("type") == "base64" and isinstance(data, str):
            self.document_chars += len(data)
        elif isinstance(data, str):
            self.chars += len(data)
        elif isinstance(source.get("content"), list):
            self.add_content(source.get("content"))


def latest_user_text(messages: list[Any]) -> tuple[str, bool]:
    """The newest user text that a person typed, and whether the last user turn is tool results.

    Walks back from the end: `role: "system"` messages (Claude Code's agent list, hook context)
    and tool-result-only user turns are skipped; reminder blocks are removed from the text.
    """
    continuation = False
    seen_user_turn = False
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        parts: list[str] = []
        has_tool_result = False
        if isinstance(content, str):
            parts.append(strip_injected(content))
        elif isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                kind = block.get("type")
                if kind == "text" and isinstance(block.get("text"), str):
                    stripped = strip_injected(block["text"])
                    if stripped:
                        parts.append(stripped)
                elif kind == "tool_result":
                    has_tool_result = True
        text = "\n".join(part for part in parts if part)
        if not seen_user_turn:
            continuation = has_tool_result and not text
            seen_user_turn = True
        if text:
            return text, continuation
    return "", continuation


_tool_size_cache: dict[tuple[str, int], int] = {}
_TOOL_SIZE_CACHE_LIMIT = 1024


def _tool_definition_chars(tool: Any) -> int:
    """Characters of one tool definition as JSON, memoized by name and description length.

    Claude Code sends the same two dozen tools (about 60 KB) with every request, and serializing
    them is the costliest step of an estimate; a tool's name and the length of its description
    identify it well enough for a size estimate (keying on the description itself would hash
    and compare 60 KB of freshly parsed strings per request).
    """
    if not isinstance(tool, dict):
        return 0
    name, description = tool.get("name"), tool.get("description")
    if not isinstance(name, str) or not isinstance(description, str):
        return len(_json().dumps(tool, ensure_ascii=False, default=str))
    key = (name, len(description))
    size = _tool_size_cache.get(key)
    if size is None:
        size = len(_json().dumps(tool, ensure_ascii=False, default=str))
        if len(_tool_size_cache) >= _TOOL_SIZE_CACHE_LIMIT:
            _tool_size_cache.clear()
        _tool_size_cache[key] = size
    return size


def _server_tools(tools: list[Any]) -> tuple[str, ...]:
    found = []
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind.startswith(SERVER_TOOL_PREFIXES):
            found.append(kind)
    return tuple(found)


def session_id_of(body: Mapping[str, Any], headers: Mapping[str, str] | None) -> str | None:
    """`X-Claude-Code-Session-Id`, else the session in `metadata.user_id` (a JSON string)."""
    if headers:
        for name, value in headers.items():
            if name.lower() == SESSION_HEADER and value:
                return value
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{") and len(user_id) <= MAX_USER_ID_CHARS:
        try:
            parsed = _json().loads(user_id)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than `json` reads
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str):
            return parsed["session_id"] or None
    # Older clients: "user_<hash>_account_<uuid>_session_<uuid>".
    marker = user_id.find("session_")
    candidate = user_id[marker + 8 : marker + 44] if marker >= 0 else ""
    if len(candidate) == 36 and set(candidate) <= _HEX_AND_DASH:
        return candidate
    return None
