"""A plain text chat with a non-Anthropic backend: Ollama's native API or any OpenAI-compatible
server (llama.cpp, vLLM, LM Studio, OpenRouter). Used where the router itself asks a model for
an answer (the MCP `delegate_to_local` tool), as opposed to relaying a client's request.

Responses are streamed so that callers can report progress and measure time to first token.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx2 as httpx

from ..config.schema import Provider

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
    finish_reason: str = "stop"  # "stop" | "length" | whatever else the backend said
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    chunks: list[str] = field(default_factory=list, repr=False)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class BackendError(Exception):
    """A backend could not answer. `kind` says why, in words the caller can act on."""

    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    MODEL_MISSING = "model-missing"
    RATE_LIMITED = "rate-limited"
    HTTP = "http-error"
    PROTOCOL = "protocol-error"

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


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


def _status_error(status: int, body: str, model: str) -> BackendError:
    message = error_message(body)
    if status == 404:
        return BackendError(
            BackendError.MODEL_MISSING, f"model {model!r} not found: {message}", status
        )
    if status == 429:
        return BackendError(BackendError.RATE_LIMITED, f"rate limited: {message}", status)
    return BackendError(BackendError.HTTP, f"HTTP {status}: {message}", status)


async def chat(
    client: httpx.AsyncClient,
    provider: Provider,
    base_url: str,
    api_key: str | None,
    request: ChatRequest,
    on_progress: ProgressFn | None = None,
) -> ChatResult:
    """Send `request` to the backend and return the whole answer, streaming underneath."""
    started = time.perf_counter()
    try:
        if provider.kind == "ollama":
            result = await _ollama_chat(client, provider, base_url, request, on_progress, started)
        elif provider.kind in ("openai", "openrouter"):
            result = await _openai_chat(
                client, provider, base_url, api_key, request, on_progress, started
            )
        else:
            raise BackendError(
                BackendError.PROTOCOL, f"provider kind {provider.kind!r} cannot run a local chat"
            )
    except httpx.ConnectError as exc:
        raise BackendError(
            BackendError.UNREACHABLE, f"cannot connect to {base_url}: {exc}"
        ) from None
    except httpx.TimeoutException:
        raise BackendError(
            BackendError.TIMEOUT, f"{base_url} did not answer within {provider.read_timeout:g} s"
        ) from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise BackendError(
            BackendError.PROTOCOL, f"the connection to {base_url} broke: {exc}"
        ) from None
    result.latency_ms = (time.perf_counter() - started) * 1000
    return result


async def _ollama_chat(
    client: httpx.AsyncClient,
    provider: Provider,
    base_url: str,
    request: ChatRequest,
    on_progress: ProgressFn | None,
    started: float,
) -> ChatResult:
    options: dict[str, object] = {
        "num_predict": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.num_ctx:
        options["num_ctx"] = request.num_ctx
    body = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "stream": True,
        "options": options,
    }
    result = ChatResult(text="")
    async with client.stream(
        "POST",
        f"{base_url}/api/chat",
        json=body,
        headers=request_headers(provider, None),
        timeout=timeout_for(provider),
    ) as response:
        if response.status_code != 200:
            raise _status_error(
                response.status_code,
                (await response.aread()).decode("utf-8", "replace"),
                request.model,
            )
        async for line in _lines(response):
            try:
                chunk = json.loads(line)
            except ValueError:
                raise BackendError(
                    BackendError.PROTOCOL, f"Ollama sent a line that is not JSON: {line[:80]!r}"
                ) from None
            if "error" in chunk:
                raise BackendError(BackendError.HTTP, f"Ollama: {chunk['error']}")
            piece = (chunk.get("message") or {}).get("content") or ""
            if piece:
                await _add_piece(result, piece, started, on_progress)
            if chunk.get("done"):
                result.finish_reason = chunk.get("done_reason") or "stop"
                # Both counts are omitted when zero (Ollama's omitempty): absent means 0.
                result.input_tokens = int(chunk.get("prompt_eval_count") or 0)
                result.output_tokens = int(chunk.get("eval_count") or 0)
    result.text = "".join(result.chunks)
    return result


async def _openai_chat(
    client: httpx.AsyncClient,
    provider: Provider,
    base_url: str,
    api_key: str | None,
    request: ChatRequest,
    on_progress: ProgressFn | None,
    started: float,
) -> ChatResult:
    body = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = ChatResult(text="")
    async with client.stream(
        "POST",
        f"{base_url}/chat/completions",
        json=body,
        headers=request_headers(provider, api_key),
        timeout=timeout_for(provider),
    ) as response:
        if response.status_code != 200:
            raise _status_error(
                response.status_code,
                (await response.aread()).decode("utf-8", "replace"),
                request.model,
            )
        async for line in _lines(response):
            if not line.startswith("data:"):
                continue  # event names, comments (OpenRouter sends ": OPENROUTER PROCESSING")
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise BackendError(
                    BackendError.PROTOCOL,
                    f"the server sent an event that is not JSON: {data[:80]!r}",
                ) from None
            if "error" in chunk:
                raise BackendError(BackendError.HTTP, error_message(data))
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    await _add_piece(result, piece, started, on_progress)
                if choice.get("finish_reason"):
                    result.finish_reason = choice["finish_reason"]
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                result.input_tokens = int(usage.get("prompt_tokens") or 0)
                result.output_tokens = int(usage.get("completion_tokens") or 0)
    result.text = "".join(result.chunks)
    if not result.output_tokens and result.text:
        result.output_tokens = max(1, len(result.text) * 2 // 7)  # the server sent no usage
    return result


async def _add_piece(
    result: ChatResult, piece: str, started: float, on_progress: ProgressFn | None
) -> None:
    if result.ttft_ms is None:
        result.ttft_ms = (time.perf_counter() - started) * 1000
    result.chunks.append(piece)
    if on_progress is not None:
        await on_progress(len(result.chunks))


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if line.strip():
            yield line


async def installed_models(
    client: httpx.AsyncClient, provider: Provider, base_url: str, api_key: str | None
) -> list[str]:
    """The model names a local backend has: Ollama's /api/tags, or an OpenAI server's /models."""
    path = "/api/tags" if provider.kind == "ollama" else "/models"
    try:
        response = await client.get(
            f"{base_url}{path}",
            headers=request_headers(provider, api_key),
            timeout=httpx.Timeout(provider.connect_timeout + 5.0, connect=provider.connect_timeout),
        )
    except httpx.ConnectError as exc:
        raise BackendError(
            BackendError.UNREACHABLE, f"cannot connect to {base_url}: {exc}"
        ) from None
    except httpx.TimeoutException:
        raise BackendError(BackendError.TIMEOUT, f"{base_url} did not answer") from None
    if response.status_code != 200:
        raise _status_error(response.status_code, response.text, "")
    data = response.json()
    if provider.kind == "ollama":
        return [
            m.get("name") or m.get("model") for m in data.get("models") or [] if isinstance(m, dict)
        ]
    return [m.get("id") for m in data.get("data") or [] if isinstance(m, dict) and m.get("id")]


def same_model(wanted: str, installed: str) -> bool:
    """Ollama names default their tag to `latest`: `llama3` and `llama3:latest` are one model."""

    def normal(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"

    return wanted == installed or normal(wanted) == normal(installed)
