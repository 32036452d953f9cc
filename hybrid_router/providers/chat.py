"""A plain text chat with a non-Anthropic backend: Ollama's native API or any OpenAI-compatible
server (llama.cpp, vLLM, LM Studio, OpenRouter). Used where the router itself asks a model for
an answer (the MCP `delegate_to_local` tool), as opposed to relaying a client's request.

Responses are streamed so that callers can report progress and measure time to first token.
Failures are the `BackendError` family (providers/errors.py), mapped from httpx2's exceptions at
one boundary (providers/httpx_errors.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx2 as httpx

from ..config.schema import Provider
from .errors import BackendError as BackendError  # the name the MCP server and the CLI catch
from .errors import BadAnswer, ErrorAnswer, ErrorStatus, UnsupportedCall
from .httpx_errors import boundary, scrub
from .translate import Event, OllamaChatStream, OpenAIChatStream, StreamDialect

# OpenRouter's app attribution header; it names the tool in the user's OpenRouter activity.
OPENROUTER_ATTRIBUTION = {"X-Title": "claude-hybrid-router"}

ProgressFn = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float = 0.2
    # Ollama only: the context window to allocate. Without it Ollama uses its server default
    # (often 4096) and silently drops the oldest messages of a longer prompt.
    num_ctx: int | None = None


@dataclass(slots=True)
class ChatResult:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = "end_turn"  # Anthropic's word: "end_turn", "max_tokens", "refusal"...
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    chunks: list[str] = field(default_factory=list, repr=False)

    @property
    def truncated(self) -> bool:
        return self.stop_reason == "max_tokens"


def request_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if provider.kind == "openrouter":
        headers.update(OPENROUTER_ATTRIBUTION)
    return headers


def timeout_for(provider: Provider) -> httpx.Timeout:
    return httpx.Timeout(
        connect=provider.connect_timeout, read=provider.read_timeout, write=30.0, pool=30.0
    )


def error_message(response_text: str) -> str:
    """The readable part of a backend's error body (Ollama's and OpenAI's shapes), short."""
    try:
        data = json.loads(response_text)
    except ValueError:
        return response_text.strip()[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message") or json.dumps(error)
    return str(error or response_text)[:300]


def _status_error(status: int, body: str, model: str, secrets: list[str]) -> ErrorStatus:
    message = scrub(error_message(body), secrets)  # a backend may quote the key it refused
    if status == 404:
        return ErrorStatus(f"model {model!r} not found: {message}", status)
    if status == 429:
        return ErrorStatus(f"rate limited: {message}", status)
    return ErrorStatus(f"HTTP {status}: {message}", status)


async def chat(
    client: httpx.AsyncClient,
    provider: Provider,
    base_url: str,
    api_key: str | None,
    request: ChatRequest,
    on_progress: ProgressFn | None = None,
) -> ChatResult:
    """Send `request` to the backend and return the whole answer, streaming underneath.

    Ollama is asked on its native API (the only one that takes the context window), any other
    backend on chat completions; either stream is read by its dialect (translate/), the one
    the proxy uses too. Failures are `BackendError`s (providers/errors.py)."""
    started = time.perf_counter()
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    dialect: StreamDialect
    if provider.kind == "ollama":
        options: dict[str, object] = {
            "num_predict": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.num_ctx:
            options["num_ctx"] = request.num_ctx
        url = f"{base_url}/api/chat"
        body: dict[str, object] = {
            "model": request.model,
            "messages": messages,
            "stream": True,
            "options": options,
        }
        headers = request_headers(provider, None)
        dialect = OllamaChatStream(request.model)
    elif provider.kind in ("openai", "openrouter"):
        url = f"{base_url}/chat/completions"
        body = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        headers = request_headers(provider, api_key)
        dialect = OpenAIChatStream(request.model)
    else:
        raise UnsupportedCall(f"provider kind {provider.kind!r} cannot run a local chat")
    timeout = timeout_for(provider)
    secrets = list(headers.values())
    result = ChatResult(text="")
    with boundary(base_url, secrets=secrets, timeout=timeout):
        async with client.stream(
            "POST", url, json=body, headers=headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode("utf-8", "replace")
                raise _status_error(response.status_code, text, request.model, secrets)
            with boundary(base_url, secrets=secrets, timeout=timeout, began=True):
                async for data in response.aiter_bytes():
                    await _take(dialect.feed(data), result, started, on_progress)
                    if dialect.done:
                        break
    await _take(dialect.finish(), result, started, on_progress)
    usage = dialect.usage
    result.text = "".join(result.chunks)
    result.input_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    result.output_tokens = usage.output_tokens
    result.stop_reason = dialect.stop_reason or "end_turn"
    result.latency_ms = (time.perf_counter() - started) * 1000
    return result


async def _take(
    events: list[Event], result: ChatResult, started: float, on_progress: ProgressFn | None
) -> None:
    """Collect the text of the events; an `error` event (the backend's own, mid-answer) fails."""
    for name, payload in events:
        if name == "content_block_delta":
            delta = payload["delta"]
            if delta.get("type") == "text_delta" and delta["text"]:
                if result.ttft_ms is None:
                    result.ttft_ms = (time.perf_counter() - started) * 1000
                result.chunks.append(delta["text"])
                if on_progress is not None:
                    await on_progress(len(result.chunks))
        elif name == "error":
            raise ErrorAnswer(str(payload["error"]["message"]))


async def installed_models(
    client: httpx.AsyncClient, provider: Provider, base_url: str, api_key: str | None
) -> list[str]:
    """The model names a local backend has: Ollama's /api/tags, or an OpenAI server's /models."""
    path = "/api/tags" if provider.kind == "ollama" else "/models"
    headers = request_headers(provider, api_key)
    timeout = httpx.Timeout(provider.connect_timeout + 5.0, connect=provider.connect_timeout)
    with boundary(base_url, secrets=list(headers.values()), timeout=timeout):
        response = await client.get(f"{base_url}{path}", headers=headers, timeout=timeout)
    if response.status_code != 200:
        raise _status_error(response.status_code, response.text, "", list(headers.values()))
    try:
        data = response.json()
    except ValueError as exc:
        raise BadAnswer(f"{base_url}{path} did not answer with JSON") from exc
    data = data if isinstance(data, dict) else {}
    keys: tuple[str, ...]
    if provider.kind == "ollama":
        entries, keys = data.get("models"), ("name", "model")
    else:
        entries, keys = data.get("data"), ("id",)
    names: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            name = next(
                (entry[k] for k in keys if isinstance(entry.get(k), str) and entry[k]), None
            )
            if name is not None:
                names.append(name)
    return names


def same_model(wanted: str, installed: str) -> bool:
    """Ollama names default their tag to `latest`: `llama3` and `llama3:latest` are one model."""

    def normal(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"

    return wanted == installed or normal(wanted) == normal(installed)
