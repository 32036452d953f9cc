"""Who may use a server the tool runs (the proxy, the dashboard).

- Bound to loopback, anyone on this machine may; beyond it, only a client that offers the token
  (HYBRID_ROUTER_TOKEN).
- Loopback is not a trust boundary when a browser runs on the same machine: any web page can
  send a request to 127.0.0.1 (a `text/plain` POST needs no preflight) or rebind a hostname of
  its own to it. So a request that a web page sent (it carries an `Origin`, or `Sec-Fetch-Site`
  says cross-site or same-site) is refused unless its origin is the server's own or listed; and
  without a token, a request whose `Host` is not a loopback name (DNS rebinding) is refused
  unless the name is listed. Claude Code, the SDKs and curl send neither header, so they are
  unaffected; with a token, the token is the gate and LAN names keep working.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping

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


def host_name(host_header: str) -> str:
    """The name in a `Host` header, without the port: `[::1]:3000` -> `::1`."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    name, _, port = value.rpartition(":")
    return name if name and port.isdigit() else value


def browser_refusal(
    headers: Mapping[str, str],
    *,
    token: str | None,
    allowed_origins: Collection[str] = (),
    allowed_hosts: Collection[str] = (),
) -> str | None:
    """Why a request is refused as coming from a web page (or a rebound name), or None.

    `headers` are lower-case names. The server's own origin (a page it served, such as the
    dashboard, calling back) is always allowed."""
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None:
        own = origin.lower() in (f"http://{host.lower()}", f"https://{host.lower()}")
        if not own and origin not in allowed_origins:
            return (
                f"requests from web pages are refused (Origin {origin[:100]}); "
                "list the origin in proxy.allowedOrigins to allow it"
            )
    elif headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return "requests from web pages on other sites are refused (Sec-Fetch-Site)"
    if not token:
        name = host_name(host)
        if not (is_loopback(name) or name in allowed_hosts or host in allowed_hosts):
            return (
                f"Host {host[:100]!r} is not a loopback name; list it in proxy.allowedHosts "
                "(or set HYBRID_ROUTER_TOKEN to serve other names)"
            )
    return None
