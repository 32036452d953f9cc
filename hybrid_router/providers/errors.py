"""The one family of exceptions for a backend call that gave no usable answer.

Each client stack maps its own lower-level exceptions into these at one boundary, always
`raise Mapped(...) from exc` so that the cause reaches the log: the httpx2 stack (the MCP
delegate, model lists, pulls, probes) in `providers/httpx_errors.py`, the proxy's HTTP/1.1 client
in `proxy/upstream.py`. JSON and translation errors are mapped where they are caught, and the
translation raises `ErrorAnswer` itself. A message never carries a header value (API keys).

    BackendError              a backend gave no usable answer
    ├── TransportFailure      the exchange failed below HTTP, before any answer began
    │   ├── Unreachable       no connection (refused, unresolvable, TLS, not a valid URL)
    │   ├── TimedOut          no progress within a phase's timeout (connect, write, read)
    │   └── ConnectionLost    the connection broke (or spoke no HTTP) before the answer began
    ├── BrokeOff              the answer began, then stopped short (a close, no end marker)
    ├── ErrorStatus           the backend answered with an HTTP error status
    ├── ErrorAnswer           HTTP 200, but an error object instead of an answer
    ├── BadAnswer             HTTP 200, but not the protocol (not JSON, not the expected shape)
    └── NotSendable           this request cannot go to this backend
        ├── Untranslatable    the backend's protocol cannot express it (server tools)
        ├── MalformedRequest  the client's request cannot be read: no backend would take it
        ├── InvalidHeader     a header that cannot be sent (say, a key pasted with a line break)
        └── UnsupportedCall   the provider kind does not offer this call

Messages say what happened, not where: the caller knows the link and prefixes its label.
Stdlib only: the proxy and the translation import it on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class BackendError(Exception):
    """A backend gave no usable answer.

    `kind` is the coarse word the MCP tools use; `error_class` the proxy log's finer one;
    `retriable` whether another backend may still succeed (False: the request itself is at
    fault). When the backend did answer: `status` (its HTTP status), `headers`, `retry_after`
    and `upstream_body` (its own error body). `client_error`, when set, is what a client of
    the proxy gets if this failure is the last word: an HTTP status and an Anthropic error body.
    """

    # The coarse kinds: what the MCP tools report and the `pull_model` row records.
    UNREACHABLE: ClassVar[str] = "unreachable"
    TIMEOUT: ClassVar[str] = "timeout"
    MODEL_MISSING: ClassVar[str] = "model-missing"
    RATE_LIMITED: ClassVar[str] = "rate-limited"
    HTTP: ClassVar[str] = "http-error"
    PROTOCOL: ClassVar[str] = "protocol-error"

    kind: str = PROTOCOL
    error_class: str = "protocol"
    retriable: bool = True

    def __init__(self, message: str, *, client_error: tuple[int, bytes] | None = None) -> None:
        super().__init__(message)
        self.status: int | None = None
        self.headers: Mapping[str, str] = {}
        self.retry_after: float | None = None
        self.upstream_body: bytes | None = None
        self.client_error = client_error


class TransportFailure(BackendError):
    """The exchange failed below HTTP, before any answer began."""

    error_class = "transport"


class Unreachable(TransportFailure):
    """No connection: refused, unresolvable, the TLS handshake failed, not a valid URL."""

    kind = BackendError.UNREACHABLE
    error_class = "connect"


class TimedOut(TransportFailure):
    """No progress within the timeout of `phase`: connect, write or read."""

    kind = BackendError.TIMEOUT
    error_class = "timeout"

    def __init__(self, message: str, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class ConnectionLost(TransportFailure):
    """The connection broke, or the other side spoke no HTTP, before the answer began."""


class BrokeOff(BackendError):
    """The answer began, then stopped short: the connection broke, or the stream ended before
    its end marker."""

    error_class = "broken"


class ErrorStatus(BackendError):
    """The backend answered with an HTTP error status."""

    kind = BackendError.HTTP

    def __init__(
        self,
        message: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        upstream_body: bytes | None = None,
        retriable: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})
        self.retry_after = retry_after
        self.upstream_body = upstream_body
        self.retriable = retriable
        self.error_class = f"http-{status}"
        if status == 404:
            self.kind = self.MODEL_MISSING
        elif status == 429:
            self.kind = self.RATE_LIMITED


class ErrorAnswer(BackendError):
    """HTTP 200, but an error object instead of an answer (OpenRouter reports a model's failure
    that way). `client_error` is the error in Anthropic's shape."""

    kind = BackendError.HTTP
    error_class = "upstream-error"

    def __init__(
        self,
        message: str,
        *,
        client_error: tuple[int, bytes] | None = None,
        upstream_body: bytes | None = None,
    ) -> None:
        super().__init__(message, client_error=client_error)
        self.status = 200
        self.upstream_body = upstream_body


class BadAnswer(BackendError):
    """HTTP 200, but not the protocol: not JSON, or not the expected shape."""


class NotSendable(BackendError):
    """This request cannot go to this backend."""


class Untranslatable(NotSendable):
    """The backend's protocol cannot express the request (say, Anthropic's server tools)."""

    error_class = "untranslatable"


class MalformedRequest(NotSendable):
    """The client's request cannot be read: no other backend would read it better."""

    error_class = "bad-request"
    retriable = False


class InvalidHeader(NotSendable):
    """A header that cannot be sent (a line break in it). Its value is never shown: keys."""

    error_class = "bad-header"


class UnsupportedCall(NotSendable):
    """The provider kind does not offer this call (say, a local chat with Anthropic)."""
