"""The probe's requests: one GET or POST with a short timeout, its failures the `BackendError`
family (mapped at the httpx2 boundary, with messages fit for a user and no httpx detail); the URL
as it may be shown (no credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx

from ...config.schema import Provider
from ..chat import error_message
from ..errors import BackendError, BadAnswer, ConnectionLost, TimedOut, Unreachable
from ..httpx_errors import boundary

METADATA_READ_TIMEOUT = 10.0


def unreachable(failure: BackendError) -> bool:
    """Whether nothing answered at all (as opposed to an answer the probe could not use)."""
    if isinstance(failure, TimedOut):
        return failure.phase == "connect"
    return isinstance(failure, (Unreachable, ConnectionLost))


def public_url(url: str) -> str:
    """The URL without any user:password part (a base URL may carry credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def metadata_timeout(provider: Provider) -> httpx.Timeout:
    return httpx.Timeout(
        METADATA_READ_TIMEOUT, connect=provider.connect_timeout, pool=provider.connect_timeout
    )


def error_text(response: httpx.Response) -> str:
    """The readable part of an error body (Ollama's, OpenAI's and Anthropic's shapes), short."""
    return error_message(response.text) or response.reason_phrase


async def probe_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
    shown_url: str,
    json_body: Any = None,
) -> httpx.Response:
    """One request; a transport failure is a `BackendError` whose message names `shown_url`."""
    with boundary(shown_url, secrets=list(headers.values()), detail=False):
        return await client.request(
            method, url, headers=dict(headers), json=json_body, timeout=timeout
        )


def read_json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise BadAnswer(f"{what} did not answer with JSON") from exc
