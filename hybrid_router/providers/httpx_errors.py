"""The httpx2 stack's one boundary: its exceptions become the family in `errors.py`.

Everything in the package that calls a backend through httpx2 (the MCP delegate's chats, model
lists, pulls, probes) wraps the call in `boundary(...)`. An httpx error text can carry a header
value (h11 quotes an illegal header, API key and all), so the message is scrubbed of the
values that were sent and of anything shaped like a key; the original exception stays the
`__cause__`, for the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx2 as httpx

from .errors import BackendError, BrokeOff, ConnectionLost, TimedOut, Unreachable
from .translate.response import mask_secrets

_PHASES: tuple[tuple[type[httpx.TimeoutException], str], ...] = (
    (httpx.ConnectTimeout, "connect"),
    (httpx.WriteTimeout, "write"),
    (httpx.PoolTimeout, "pool"),
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given header values, nor anything shaped like a key.

    A value is removed as sent, as an error message may quote it (its repr, with a line break
    written as an escape: a key pasted with a line break), and line by line."""
    for secret in secrets:
        bare = secret.removeprefix("Bearer ").strip()
        forms = {secret, bare, repr(bare)[1:-1], *bare.splitlines()}
        for value in sorted(forms, key=len, reverse=True):
            if len(value) >= 8:
                text = text.replace(value, "***")
    return mask_secrets(text)


def mapped(
    exc: httpx.HTTPError | httpx.InvalidURL,
    where: str,
    *,
    secrets: Iterable[str] = (),
    timeout: httpx.Timeout | None = None,
    began: bool = False,
    detail: bool = True,
) -> BackendError:
    """The family's failure for an httpx2 exception raised while talking to `where` (raise it
    `from exc`). `began`: the answer had started. `detail=False` leaves httpx's own words out
    of the message (they stay in the cause)."""
    if isinstance(exc, httpx.InvalidURL):
        return Unreachable(f"{where} is not a valid URL")
    text = scrub(str(exc), secrets) if detail else ""
    text = text or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        phase = next((name for cls, name in _PHASES if isinstance(exc, cls)), "read")
        seconds = getattr(timeout, phase, None) if timeout is not None else None
        within = f"within {seconds:g} s" if isinstance(seconds, (int, float)) else "in time"
        return TimedOut(f"{where} did not answer {within}", phase)
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(
            f"cannot connect to {where}: {text}" if detail else f"cannot connect to {where}"
        )
    if began:
        return BrokeOff(f"the connection to {where} broke: {text}")
    return ConnectionLost(f"the connection to {where} broke: {text}")


@contextmanager
def boundary(
    where: str,
    *,
    secrets: Iterable[str] = (),
    timeout: httpx.Timeout | None = None,
    began: bool = False,
    detail: bool = True,
) -> Iterator[None]:
    """Inside it, an httpx2 exception leaves as the family's failure (see `mapped`)."""
    try:
        yield
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise mapped(
            exc, where, secrets=secrets, timeout=timeout, began=began, detail=detail
        ) from exc
