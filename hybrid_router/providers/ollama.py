"""Ollama's native model management: what is installed, and pulling a model with progress."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx2 as httpx

from ..config.schema import Provider
from .chat import error_message, installed_models, same_model, timeout_for
from .errors import BackendError, BadAnswer, BrokeOff, ErrorAnswer, ErrorStatus
from .httpx_errors import boundary

PullProgressFn = Callable[[int, int | None, str], Awaitable[None]]


@dataclass
class PullResult:
    model: str
    already_present: bool
    total_bytes: int = 0
    statuses: list[str] = field(default_factory=list)


class PullTracker:
    """Turns Ollama's per-layer progress lines into one rising byte count.

    Ollama reports `completed`/`total` per layer digest, may omit `completed` until bytes arrive,
    and omits both when they are 0. MCP progress must only go up, so the overall figure is the sum
    over the layers seen, never allowed to fall.
    """

    def __init__(self) -> None:
        self.layers: dict[str, tuple[int, int]] = {}
        self.reported = 0

    def update(self, line: dict[str, object]) -> tuple[int, int | None]:
        digest = line.get("digest")
        if isinstance(digest, str):
            done, total = self.layers.get(digest, (0, 0))
            completed = line.get("completed")
            size = line.get("total")
            self.layers[digest] = (
                max(done, completed if isinstance(completed, int) else 0),
                size if isinstance(size, int) else total,
            )
        received = sum(done for done, _ in self.layers.values())
        expected = sum(size for _, size in self.layers.values()) or None
        self.reported = max(self.reported, received)
        return self.reported, expected


async def pull_model(
    client: httpx.AsyncClient,
    provider: Provider,
    base_url: str,
    model: str,
    on_progress: PullProgressFn,
) -> PullResult:
    """Pull `model` into Ollama, relaying progress. A model already there returns at once.
    Failures are `BackendError`s.

    An interrupted pull leaves its downloaded layers in Ollama, which resumes from them when the
    same model is pulled again.
    """
    installed = await installed_models(client, provider, base_url, None)
    if any(same_model(model, name) for name in installed):
        return PullResult(model, already_present=True)
    tracker = PullTracker()
    result = PullResult(model, already_present=False)
    where = f"Ollama at {base_url}"
    timeout = timeout_for(provider)
    cause: BackendError | None = None
    with boundary(where, timeout=timeout):
        async with client.stream(
            "POST",
            f"{base_url}/api/pull",
            json={"model": model, "stream": True},
            timeout=timeout,
        ) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode("utf-8", "replace")
                raise ErrorStatus(
                    f"Ollama answered HTTP {response.status_code}: {error_message(body)}",
                    response.status_code,
                )
            try:
                with boundary(where, timeout=timeout, began=True):
                    async for raw in response.aiter_lines():
                        if await _pulled(raw, tracker, result, on_progress):
                            return result
            except BrokeOff as exc:
                cause = exc  # reported below as an interrupted pull
    done, total = tracker.reported, sum(size for _, size in tracker.layers.values())
    shown = f"{done:,} of {total:,} bytes" if total else "before any bytes arrived"
    raise BrokeOff(
        f"the pull of {model!r} was interrupted ({shown}); call pull_model again to resume it"
    ) from cause


async def _pulled(
    raw: str, tracker: PullTracker, result: PullResult, on_progress: PullProgressFn
) -> bool:
    """Take one progress line; True once Ollama says the pull succeeded."""
    if not raw.strip():
        return False
    try:
        line = json.loads(raw)
    except ValueError as exc:
        raise BadAnswer(f"Ollama sent a line that is not JSON: {raw[:80]!r}") from exc
    if not isinstance(line, dict):
        raise BadAnswer(f"Ollama sent a line that is not an object: {raw[:80]!r}")
    if "error" in line:
        raise ErrorAnswer(str(line["error"]))
    status = str(line.get("status", ""))
    if status and (not result.statuses or result.statuses[-1] != status):
        result.statuses.append(status)
    completed, total = tracker.update(line)
    await on_progress(completed, total, status)
    if status == "success":
        result.total_bytes = total or 0
        return True
    return False
