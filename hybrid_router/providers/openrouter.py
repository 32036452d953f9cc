"""What OpenRouter will refuse before we ask: the free-model daily cap, credit blocks, short waits.

The proxy, the MCP server and the CLI consult one `FreeTierTracker` before routing to OpenRouter,
so an exhausted free tier is skipped instead of costing a round trip (and, per user reports, a
failed attempt may itself count against the daily cap). The tracker learns from three sources
(OpenRouter's documentation: the API reference's pages on limits, keys and errors):

- `GET {base}/key`: `free_model_daily_requests {used, limit, remaining}` (the authoritative daily
  counter and ceiling), `is_free_tier`, and the per-key credit cap `limit` / `limit_remaining` /
  `limit_reset`. `rate_limit` is documented as deprecated ("safe to ignore") and is ignored.
- `X-RateLimit-Limit` / `-Remaining` / `-Reset` (ms epoch) headers. OpenRouter sends them on its
  own 429s (also copied into `error.metadata.headers`), not on successful answers.
- Error bodies: 429 `free-models-per-day` (daily cap, until the UTC day ends), 429
  `free-models-per-min` (20 requests a minute: a short wait, not exhaustion), 429 from an
  upstream provider (that model only, briefly), and 402 with `metadata.limit_source`.

Day boundary: OpenRouter counts free-model requests per **UTC day** (`/key` docs: "free-model
requests recorded so far in the current UTC day"), so the local counter is keyed by the UTC date
and everything "until the reset" means the next 00:00 UTC, unless a 429 names its reset time.

State is a small JSON file (`<home>/state/openrouter.json`) shared by every process of the tool:
written atomically, re-read whenever another process changed it, ignored when corrupt. Two
processes counting at the same instant may lose one increment; the next `/key` refresh or 429
corrects that. The API key is only ever put in a request header, never in the state or a log.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2 as httpx

from ..core import home
from .chat import OPENROUTER_ATTRIBUTION

__all__ = [
    "FREE_DAILY_LIMIT_NO_CREDITS",
    "FREE_DAILY_LIMIT_WITH_CREDITS",
    "FREE_REQUESTS_PER_MINUTE",
    "FreeTierTracker",
    "default_state_path",
    "is_free_model",
    "next_utc_midnight",
]

log = logging.getLogger(__name__)

# The documented free-model limits (OpenRouter's limits documentation): the daily ceiling
# depends on lifetime credit purchases (< 10 USD: 50, >= 10 USD: 1000), not on `is_free_tier`;
# the minute limit is fixed.
FREE_DAILY_LIMIT_NO_CREDITS = 50
FREE_DAILY_LIMIT_WITH_CREDITS = 1000
FREE_REQUESTS_PER_MINUTE = 20

STATE_VERSION = 1
STATE_FILENAME = os.path.join("state", "openrouter.json")

# A 429 with no usable reset time: wait about one rate-limit window before trying again.
DEFAULT_MINUTE_BLOCK = 60.0
# A rate-limit window that resets further away than this is the daily one, not the minute one.
DAILY_WINDOW_THRESHOLD = 300.0
# A 402 (credits) gives no end time, and `/key` cannot show the account balance; try again after
# this long, since one refused request is cheap and the user may have added credits meanwhile.
CREDIT_RECHECK = 3600.0
REFRESH_TIMEOUT = 10.0


def default_state_path(environ: Mapping[str, str] | None = None) -> str:
    """`<home>/state/openrouter.json`, shared by the proxy, the MCP server and the CLI."""
    return os.path.join(home.home_path(environ), STATE_FILENAME)


def is_free_model(model: str) -> bool:
    """A model under the free-model limits: a `:free` variant, or the `openrouter/free` router."""
    return model.endswith(":free") or model == "openrouter/free"


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def next_utc_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).date() + timedelta(days=1)
    return float(calendar.timegm(day.timetuple()))


def _next_limit_reset(limit_reset: Any, now: float) -> float:
    """When a per-key credit cap resets (`limit_reset`: daily, weekly (Monday), monthly; UTC)."""
    today = datetime.fromtimestamp(now, UTC).date()
    if limit_reset == "daily":
        return next_utc_midnight(now)
    if limit_reset == "weekly":
        start = today + timedelta(days=7 - today.weekday())
    elif limit_reset == "monthly":
        start = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:  # never resets: look again later (the user may raise the cap)
        return now + CREDIT_RECHECK
    return float(calendar.timegm(start.timetuple()))


def _when(until: float, now: float) -> str:
    """`03:00 UTC, in 2h 5m`: absolute for the logs, relative for the human."""
    left = max(0, int(until - now))
    hours, rest = divmod(left, 3600)
    span = f"{hours}h {rest // 60}m" if hours else f"{rest // 60}m {rest % 60}s"
    return f"{datetime.fromtimestamp(until, UTC):%H:%M} UTC, in {span}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _reset_epoch(value: Any) -> float | None:
    """`X-RateLimit-Reset` is documented in ms since the epoch; accept seconds too."""
    number = _number(value)
    if number is None or number <= 0:
        return None
    return number / 1000.0 if number > 1e11 else number


def _retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After`: delta seconds or an HTTP date."""
    if not value:
        return None
    number = _number(value)
    if number is not None:
        return max(0.0, number)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _error_of(body: bytes | None) -> dict[str, Any]:
    """The `error` object of an OpenRouter body (HTTP error or an in-stream SSE event)."""
    if not body:
        return {}
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("data:"):
        text = text[5:].strip()
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _metadata(error: dict[str, Any]) -> dict[str, Any]:
    meta = error.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _rate_headers(
    hdrs: Mapping[str, str], error: dict[str, Any]
) -> tuple[float | None, float | None, float | None]:
    """(limit, remaining, reset epoch) from `X-RateLimit-*`, or the copy in `metadata.headers`."""
    copied = _metadata(error).get("headers")
    merged = {
        str(k).lower(): str(v) for k, v in (copied if isinstance(copied, dict) else {}).items()
    }
    merged.update(hdrs)
    return (
        _number(merged.get("x-ratelimit-limit")),
        _number(merged.get("x-ratelimit-remaining")),
        _reset_epoch(merged.get("x-ratelimit-reset")),
    )


def _window(message: str, reset: float | None, now: float) -> str | None:
    """Which limit a rate-limit answer is about: "day", "minute", or None (cannot tell).

    OpenRouter's own messages name it (`Rate limit exceeded: free-models-per-day` / `-per-min`);
    failing that, a reset far away can only be the daily window.
    """
    if "per-day" in message:
        return "day"
    if "per-min" in message:
        return "minute"
    if reset is not None:
        return "day" if reset - now > DAILY_WINDOW_THRESHOLD else "minute"
    return None


class FreeTierTracker:
    """Per provider name (one OpenRouter key each): today's free-model count and ceiling, and
    blocks.

    A block is `{"until": epoch, "reason": str}` under one of the keys `free` (free models: daily
    cap or negative balance), `paid` (paid models: 402), `minute` (all models: a short per-minute
    wait) and `model:<id>` (one model rate-limited upstream). `state_path=None` keeps the state in
    memory only.
    """

    def __init__(self, state_path: str | None) -> None:
        self.state_path = state_path
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"version": STATE_VERSION, "providers": {}}
        self._signature: tuple[int, int, int] | None = None
        self._load()

    @classmethod
    def at_home(cls, environ: Mapping[str, str] | None = None) -> FreeTierTracker:
        return cls(default_state_path(environ))

    # -- queries -------------------------------------------------------------------------------

    def exhausted(self, provider_name: str, model: str, now: float) -> str | None:
        """Why `model` would be refused right now, or None when it is worth trying.

        Free models: the daily cap is reached (a 429 said so, `/key` said so, or today's local
        count reached the known ceiling), or a 402 on a free model showed a negative balance.
        Paid models: a 402 (credits, key cap or in-flight budget) or `/key` showing the key's
        cap spent. Either: the model itself is rate-limited upstream. A per-minute limit is not
        exhaustion: see `retry_after`.
        """
        with self._lock:
            self._load()
            p = self._provider(provider_name, now)
            block = self._active(p, f"model:{model}", now)
            if block:
                return block
            if not is_free_model(model):
                return self._active(p, "paid", now)
            block = self._active(p, "free", now)
            if block:
                return block
            limit = p.get("free_limit")
            if limit is not None and p["free_used"] >= limit:
                return (
                    f"OpenRouter free-model daily limit reached ({p['free_used']}/{limit} "
                    f"requests today); resets at {_when(next_utc_midnight(now), now)}"
                )
            return None

    def retry_after(self, provider_name: str, now: float) -> float | None:
        """Seconds left of a per-minute block (429 free-models-per-min), else None."""
        with self._lock:
            self._load()
            block = self._provider(provider_name, now)["blocks"].get("minute")
            until: float | None = block["until"] if block else None
            if until is not None and until > now:
                return until - now
            return None

    def snapshot(self, provider_name: str, now: float) -> dict[str, Any]:
        """A copy of what is known (for `status` commands and tests)."""
        with self._lock:
            self._load()
            copy: dict[str, Any] = json.loads(json.dumps(self._provider(provider_name, now)))
            return copy

    # -- learning ------------------------------------------------------------------------------

    def count_request(self, provider_name: str, model: str, now: float) -> None:
        """Count one request sent to a free model, against the UTC day of `now`."""
        if not is_free_model(model):
            return
        with self._lock:
            self._load()
            self._provider(provider_name, now)["free_used"] += 1
            self._save()

    def record_response(
        self,
        provider_name: str,
        model: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None,
        now: float,
    ) -> None:
        """Learn from one chat response: its status, rate-limit headers and error body.

        `body` may be the error body of a failed request or one SSE `data:` event: OpenRouter
        reports errors after the stream started with status 200 and an `error` object.
        """
        hdrs = {k.lower(): v for k, v in headers.items()}
        error = _error_of(body)
        code = error.get("code")
        if status == 200 and isinstance(code, int | str) and str(code).isdigit():
            status = int(code)  # a mid-stream error event
        with self._lock:
            self._load()
            p = self._provider(provider_name, now)
            changed = self._learn_headers(p, model, hdrs, error, status, now)
            if status == 429:
                self._learn_429(p, model, hdrs, error, now)
                changed = True
            elif status == 402:
                self._learn_402(p, model, hdrs, error, now)
                changed = True
            elif 200 <= status < 300 and not error:
                changed = self._learn_success(p, model) or changed
            if changed:
                self._save()

    async def refresh(
        self,
        client: httpx.AsyncClient,
        provider_name: str,
        base_url: str,
        api_key: str | None,
        now: float,
    ) -> bool:
        """Read `GET {base_url}/key` into the state. Never raises; False leaves the state as it
        was."""
        if not api_key:
            return False
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            **OPENROUTER_ATTRIBUTION,
        }
        try:
            response = await client.get(
                f"{base_url.rstrip('/')}/key", headers=headers, timeout=REFRESH_TIMEOUT
            )
            data = response.json().get("data") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            # The exception text names the URL at most; never the headers.
            log.debug("OpenRouter /key refresh failed: %s", type(exc).__name__)
            return False
        if not isinstance(data, dict):
            log.debug("OpenRouter /key refresh: HTTP %s", response.status_code)
            return False
        with self._lock:
            self._load()
            self._learn_key(self._provider(provider_name, now), data, now)
            self._save()
        return True

    # -- the rules -----------------------------------------------------------------------------

    def _learn_key(self, p: dict[str, Any], data: dict[str, Any], now: float) -> None:
        p["refreshed_at"] = now
        if isinstance(data.get("is_free_tier"), bool):
            p["is_free_tier"] = data["is_free_tier"]
        for field in ("limit", "limit_remaining", "usage", "usage_daily"):
            p[f"key_{field}"] = _number(data.get(field))
        p["key_limit_reset"] = (
            data.get("limit_reset") if isinstance(data.get("limit_reset"), str) else None
        )
        # `rate_limit` is deprecated ("safe to ignore"): not read.

        daily = data.get("free_model_daily_requests")
        used = _number(daily.get("used")) if isinstance(daily, dict) else None
        limit = _number(daily.get("limit")) if isinstance(daily, dict) else None
        if limit is not None:
            p["free_limit"] = int(limit)
        elif p.get("is_free_tier") is True:
            # Never bought credits, so under the 10-credit threshold. `is_free_tier: false` says
            # nothing about reaching the threshold: leave the ceiling unknown rather than guess.
            p["free_limit"] = FREE_DAILY_LIMIT_NO_CREDITS
        if used is not None:
            p["free_used"] = int(used)  # the server's count covers every client of the account
        if p.get("free_limit") is not None and p["free_used"] < p["free_limit"]:
            p["blocks"].pop("free", None)  # e.g. credits bought since the 429: the cap went up

        key_limit, remaining = p["key_limit"], p["key_limit_remaining"]
        if key_limit is not None and remaining is not None and remaining <= 0:
            self._block(
                p,
                "paid",
                _next_limit_reset(p["key_limit_reset"], now),
                f"OpenRouter key credit limit spent ({p['key_usage'] or 0:g} of "
                f"{key_limit:g} credits)",
                "openrouter_key_limit",
            )
        elif p["blocks"].get("paid", {}).get("source") == "openrouter_key_limit":
            p["blocks"].pop("paid")  # the cap was raised or has reset
        # A credits block (402 `openrouter_credits`) stays: `/key` does not show the balance.

    def _learn_headers(
        self,
        p: dict[str, Any],
        model: str,
        hdrs: Mapping[str, str],
        error: dict[str, Any],
        status: int,
        now: float,
    ) -> bool:
        """`X-RateLimit-*`: a free-model daily window tells today's count and ceiling."""
        limit, remaining, reset = _rate_headers(hdrs, error)
        if limit is None or remaining is None:
            return False
        message = str(error.get("message") or "")
        if _window(message, reset, now) != "day":
            if remaining <= 0 and status != 429:  # a 429 is handled (with Retry-After) below
                self._block(
                    p,
                    "minute",
                    reset or now + DEFAULT_MINUTE_BLOCK,
                    "OpenRouter per-minute rate limit",
                )
                return True
            return False
        if not (is_free_model(model) or "free-models" in message):
            return False  # a daily window that is not the free-model one: nothing we model
        p["free_limit"] = int(limit)
        p["free_used"] = max(p["free_used"], int(limit - remaining))
        if remaining <= 0:
            self._block_free_daily(p, reset, now)
        return True

    def _learn_429(
        self,
        p: dict[str, Any],
        model: str,
        hdrs: Mapping[str, str],
        error: dict[str, Any],
        now: float,
    ) -> None:
        message = str(error.get("message") or "")
        meta = _metadata(error)
        _, _, reset = _rate_headers(hdrs, error)
        window = _window(message, reset, now)
        if window == "day" or "daily" in str(meta.get("limit_source") or ""):
            if "free" in p["blocks"]:
                return  # already learnt from the headers
            if "Add 10 credits" in message and p.get("free_limit") is None:
                p["free_limit"] = FREE_DAILY_LIMIT_NO_CREDITS  # the lower tier says so itself
            self._block_free_daily(p, reset, now)
            return
        wait = _retry_after(hdrs.get("retry-after"), now)
        if wait is None and reset is not None and reset > now:
            wait = reset - now
        if window is None and (
            meta.get("provider_name")
            or meta.get("provider_code")
            or "upstream" in str(meta.get("raw") or "")
        ):
            # The provider behind one model is at capacity: skip that model only, briefly.
            self._block(
                p,
                f"model:{model}",
                now + (wait or DEFAULT_MINUTE_BLOCK),
                f"{model} is rate-limited by its upstream provider",
            )
            return
        # The per-minute limit, or a 429 we cannot classify: a short wait, never exhaustion.
        self._block(
            p,
            "minute",
            now + (wait if wait is not None else DEFAULT_MINUTE_BLOCK),
            "OpenRouter per-minute rate limit",
        )

    def _learn_402(
        self,
        p: dict[str, Any],
        model: str,
        hdrs: Mapping[str, str],
        error: dict[str, Any],
        now: float,
    ) -> None:
        meta = _metadata(error)
        source = str(meta.get("limit_source") or "openrouter_credits")
        if meta.get("reason") == "weight_exceeds_budget":
            return  # only this (too large) request is refused; smaller ones still go through
        wait = _retry_after(hdrs.get("retry-after"), now)
        if source == "openrouter_in_flight_budget":
            # Transient, paid models only (free models are exempt from the in-flight budget).
            self._block(
                p,
                "paid",
                now + (wait or DEFAULT_MINUTE_BLOCK),
                "OpenRouter in-flight spending budget full",
                source,
            )
        elif source == "openrouter_key_limit":
            self._block(
                p,
                "paid",
                _next_limit_reset(p.get("key_limit_reset"), now),
                "OpenRouter key credit limit spent (402)",
                source,
            )
        else:
            reason = "OpenRouter: insufficient credits (402)"
            self._block(p, "paid", now + CREDIT_RECHECK, reason, source)
            if is_free_model(model):
                # Documented: a negative balance can refuse free models too. Only a 402 on a free
                # model proves it; a 402 on a paid one just means it cannot be paid for.
                self._block(
                    p,
                    "free",
                    now + CREDIT_RECHECK,
                    f"{reason} on a free model: the account balance is negative",
                    source,
                )

    def _learn_success(self, p: dict[str, Any], model: str) -> bool:
        """A model answered: whatever blocked its kind is over, and a stale ceiling is dropped."""
        removed = p["blocks"].pop(f"model:{model}", None) is not None
        if is_free_model(model):
            removed = p["blocks"].pop("free", None) is not None or removed
            if p.get("free_limit") is not None and p["free_used"] > p["free_limit"]:
                p["free_limit"] = None  # served past the ceiling we believed in: it went up
                removed = True
        else:
            removed = p["blocks"].pop("paid", None) is not None or removed
        return removed

    def _block_free_daily(self, p: dict[str, Any], reset: float | None, now: float) -> None:
        until = reset if reset is not None and reset > now else next_utc_midnight(now)
        used = f" ({p['free_limit']} requests)" if p.get("free_limit") else ""
        self._block(
            p, "free", until, f"OpenRouter free-model daily limit reached{used}; resets at {{when}}"
        )

    @staticmethod
    def _block(
        p: dict[str, Any], key: str, until: float, reason: str, source: str | None = None
    ) -> None:
        """Set a block, keeping an existing one that lasts longer."""
        old = p["blocks"].get(key)
        if old and old["until"] >= until:
            return
        p["blocks"][key] = {
            "until": until,
            "reason": reason,
            **({"source": source} if source else {}),
        }

    @staticmethod
    def _active(p: dict[str, Any], key: str, now: float) -> str | None:
        block = p["blocks"].get(key)
        if not block or block["until"] <= now:
            return None
        reason = block["reason"]
        return (
            reason.replace("{when}", _when(block["until"], now))
            if "{when}" in reason
            else (f"{reason}; until {_when(block['until'], now)}")
        )

    # -- state ---------------------------------------------------------------------------------

    def _provider(self, name: str, now: float) -> dict[str, Any]:
        """The provider's entry, rolled over to the UTC day of `now` and without expired blocks."""
        p: dict[str, Any] = self._state["providers"].setdefault(name, {})
        p.setdefault("free_used", 0)
        p.setdefault("free_limit", None)
        p.setdefault("blocks", {})
        day = utc_day(now)
        if p.get("day") != day:
            if p.get("day") is None or p["day"] < day:
                p["free_used"] = 0  # OpenRouter's free-model counter restarts each UTC day
            p["day"] = max(day, p.get("day") or day)
        for key in [k for k, b in p["blocks"].items() if b["until"] <= now]:
            del p["blocks"][key]
        return p

    def _load(self) -> None:
        """Re-read the file when another process (or tracker) replaced it since we last saw it."""
        if self.state_path is None:
            return
        try:
            st = os.stat(self.state_path)
        except OSError:
            return
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            with open(self.state_path, encoding="utf-8") as handle:
                data = json.load(handle)
            if not _valid(data):
                raise ValueError("unexpected shape")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("ignoring the unreadable OpenRouter state %s: %s", self.state_path, exc)
            return
        self._state = data

    def _save(self) -> None:
        if self.state_path is None:
            return
        directory = os.path.dirname(self.state_path) or "."
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".openrouter-", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(self._state, handle, indent=1, sort_keys=True)
                os.replace(tmp, self.state_path)  # readers see the old or the new file, whole
            except BaseException:
                os.unlink(tmp)
                raise
            st = os.stat(self.state_path)
            self._signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError as exc:
            # Routing must not fail because the home is read-only; the state stays in memory.
            log.warning("cannot save the OpenRouter state to %s: %s", self.state_path, exc)


def _valid(data: Any) -> bool:
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return False
    providers = data.get("providers")
    if not isinstance(providers, dict):
        return False
    for p in providers.values():
        if not isinstance(p, dict) or not isinstance(p.get("free_used", 0), int):
            return False
        blocks = p.get("blocks", {})
        if not isinstance(blocks, dict) or not all(
            isinstance(b, dict)
            and isinstance(b.get("until"), int | float)
            and isinstance(b.get("reason"), str)
            for b in blocks.values()
        ):
            return False
    return True
