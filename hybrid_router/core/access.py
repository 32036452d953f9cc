"""Who may use a server the tool runs (the proxy, the dashboard): anyone on loopback; beyond
it, only a client that offers the token (HYBRID_ROUTER_TOKEN)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

# The token that lets a client reach a server bound beyond loopback.
TOKEN_ENV = "HYBRID_ROUTER_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def token_offered(headers: Mapping[str, str], token: str | None, *also: str | None) -> bool:
    """With a token set, the request must carry it: as `x-api-key`, `Authorization: Bearer`, or
    one of `also` (the dashboard's `?token=`). Compared in constant time."""
    if not token:
        return True
    bearer = headers.get("authorization") or ""
    if bearer.lower().startswith("bearer "):
        bearer = bearer[7:]
    offered = (*also, headers.get("x-api-key"), bearer)
    return any(hmac.compare_digest(value.encode(), token.encode()) for value in offered if value)
