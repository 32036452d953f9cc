"""The probe's results and where they are kept: `ModelReport` and `BackendReport`, the status
values, the questions the proxy asks of them (`tool_capable`, `reported_window`), and the cache
file under the home (`save_reports`, `load_reports`).

`probe/__init__.py` fills these in; import them from there.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...core import home
from ..chat import same_model

CACHE_VERSION = 1
CACHE_RELATIVE_PATH = os.path.join("state", "probe.json")
DEFAULT_MAX_AGE_SECONDS = 24 * 3600.0  # what the proxy should pass to load_reports

# Model status values (ModelReport.status).
OK = "ok"
MISSING = "missing"
UNREACHABLE = "unreachable"
SKIPPED = "skipped"  # the backend was not checked (no API key)
ERROR = "error"  # reachable, but the check failed (HTTP error, bad answer)
UNCHECKED = "unchecked"  # internal: not decided yet


@dataclass
class ModelReport:
    model: str
    status: str = UNCHECKED  # ok | missing | unreachable | skipped | error
    present: bool | None = None  # None: could not tell
    context_window: int | None = None  # None: unknown
    tools: bool | None = None  # the round trip: None = untested or inconclusive
    tools_hint: bool | None = None  # what the server claims (Ollama capabilities, OpenRouter)
    detail: str | None = None  # why tools is False/None, or what went wrong
    # Ollama: the window the model is loaded with right now (/api/ps), None when not loaded.
    runtime_context: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelReport:
        return cls(
            model=str(data["model"]),
            status=str(data.get("status") or UNCHECKED),
            present=_opt_bool(data.get("present")),
            context_window=opt_int(data.get("context_window")),
            tools=_opt_bool(data.get("tools")),
            tools_hint=_opt_bool(data.get("tools_hint")),
            detail=_opt_str(data.get("detail")),
            runtime_context=opt_int(data.get("runtime_context")),
        )


@dataclass
class BackendReport:
    provider: str
    kind: str
    base_url: str
    reachable: bool | None = None  # None: not checked (see `skipped`)
    version: str | None = None
    messages_api: bool | None = None  # Ollama: serves /v1/messages (0.14+); None elsewhere
    skipped: str | None = None  # why the backend was not checked
    error: str | None = None
    checked_at: float = field(default_factory=time.time)
    models: list[ModelReport] = field(default_factory=list)

    def model(self, name: str) -> ModelReport | None:
        for entry in self.models:
            if entry.model == name or same_model(name, entry.model):
                return entry
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendReport:
        models = data.get("models") or []
        if not isinstance(models, list):
            raise TypeError("models is not a list")
        return cls(
            provider=str(data["provider"]),
            kind=str(data["kind"]),
            base_url=str(data.get("base_url") or ""),
            reachable=_opt_bool(data.get("reachable")),
            version=_opt_str(data.get("version")),
            messages_api=_opt_bool(data.get("messages_api")),
            skipped=_opt_str(data.get("skipped")),
            error=_opt_str(data.get("error")),
            checked_at=float(data.get("checked_at") or 0.0),
            models=[ModelReport.from_dict(m) for m in models],
        )


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def opt_int(value: Any) -> int | None:
    """A positive int (a window, a count) as JSON gave it; anything else is None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------
# Asking the reports
# --------------------------------------------------------------------------------------------


def tool_capable(reports: Iterable[BackendReport], provider: str, model: str) -> bool | None:
    """Whether `model` on `provider` answered the tool probe with a tool call.

    None: unknown (never probed, probe inconclusive, no cache); the proxy treats it as capable.
    """
    for report in reports:
        if report.provider != provider:
            continue
        entry = report.model(model)
        if entry is not None:
            return entry.tools
    return None


def reported_window(reports: Iterable[BackendReport], provider: str, model: str) -> int | None:
    """The context window the backend itself reported for `model` (None: unknown)."""
    for report in reports:
        if report.provider == provider:
            entry = report.model(model)
            if entry is not None:
                return entry.context_window
    return None


def carry_over_tools(reports: list[BackendReport], previous: Iterable[BackendReport]) -> None:
    """Keep earlier tool results where the new reports have none (`doctor --no-tools`)."""
    previous = list(previous)
    for report in reports:
        for entry in report.models:
            if entry.tools is None and entry.status == OK:
                earlier = tool_capable(previous, report.provider, entry.model)
                if earlier is not None:
                    entry.tools = earlier
                    entry.detail = entry.detail or "tools: from an earlier probe"


# --------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------


def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """`<home>/state/probe.json`."""
    return Path(home.home_path(environ)) / CACHE_RELATIVE_PATH


def save_reports(path: Path | str, reports: Iterable[BackendReport]) -> None:
    """Write the reports atomically (a temporary file renamed over the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": CACHE_VERSION,
        "saved_at": time.time(),
        "reports": [report.to_dict() for report in reports],
    }
    fd, temporary = tempfile.mkstemp(prefix=".probe-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def load_reports(
    path: Path | str,
    max_age_seconds: float | None = DEFAULT_MAX_AGE_SECONDS,
) -> list[BackendReport]:
    """The saved reports, or [] when the file is missing, unreadable, corrupt or too old.

    `max_age_seconds=None` accepts any age.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
        if not isinstance(payload, dict) or payload.get("version") != CACHE_VERSION:
            return []
        saved_at = float(payload["saved_at"])
        age = time.time() - saved_at
        if max_age_seconds is not None and (age > max_age_seconds or age < -300):
            return []
        raw = payload["reports"]
        if not isinstance(raw, list):
            return []
        return [BackendReport.from_dict(item) for item in raw]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
