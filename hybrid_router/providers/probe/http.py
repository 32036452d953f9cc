"""The probe's requests: one GET or POST with a short timeout, and its failures turned into
`ProbeFailure` with a message fit for a user; the URL as it may be shown (no credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx

from ...config.schema import Provider
from ..chat import error_message

METADATA_READ_TIMEOUT = 10.0


class ProbeFailure(Exception):
    """A request failed; `unreachable` when nothing answered at all."""

    def __init__(self, message: str, *, unreachable: bool = False, status: int | None = None):
        super().__init__(message)
        self.unreachable = unreachable
        self.status = status


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
    """One request; transport failures become ProbeFailure with a message fit for a user."""
    try:
        return await client.request(
            method, url, headers=dict(headers), json=json_body, timeout=timeout
        )
    except httpx.ConnectError:
        raise ProbeFailure(f"cannot connect to {shown_url}", unreachable=True) from None
    except httpx.TimeoutException as exc:
        unreachable = isinstance(exc, httpx.ConnectTimeout)
        raise ProbeFailure(f"{shown_url} did not answer in time", unreachable=unreachable) from None
    except httpx.HTTPError as exc:
        raise ProbeFailure(
            f"the connection to {shown_url} failed: {type(exc).__name__}", unreachable=True
        ) from None
    except httpx.InvalidURL:
        raise ProbeFailure(f"{shown_url} is not a valid URL", unreachable=True) from None


def read_json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ProbeFailure(f"{what} did not answer with JSON") from None
