"""The Claude Code `env` block that sends Claude Code through the proxy.

One source for what `hybrid-router proxy` prints, what `install --proxy` writes into Claude
Code's settings, and what a launcher passes on the command line: the template's variables
(settings-templates/proxy-env.json), with the address the proxy is configured to listen on, and
the credentials that fit how the proxy is set up:
- the proxy's token (HYBRID_ROUTER_TOKEN) when it has one (a bind beyond loopback needs it);
- else, when the proxy holds an Anthropic key, a placeholder token it recognises and replaces
  (so Claude Code does not ask for a login it will not use);
- else nothing: Claude Code keeps its own key or login, and the proxy forwards it to Anthropic.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import RouterConfig, provider_api_key
from ..core.access import TOKEN_ENV

# What the proxy puts in ANTHROPIC_AUTH_TOKEN when it holds the Anthropic key itself; the proxy
# never forwards it (proxy/upstream.py).
PLACEHOLDER_TOKEN = "hybrid-router"
AUTH_TOKEN_VARIABLE = "ANTHROPIC_AUTH_TOKEN"


def client_host(host: str) -> str:
    """The address a client on this machine uses for a server bound to `host`."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def proxy_env(
    template: Mapping[str, str],
    host: str,
    port: int,
    token: str | None,
    proxy_has_anthropic_key: bool,
) -> dict[str, str]:
    env = dict(template)
    env["ANTHROPIC_BASE_URL"] = f"http://{client_host(host)}:{port}"
    env.pop(AUTH_TOKEN_VARIABLE, None)
    if token:
        env[AUTH_TOKEN_VARIABLE] = token
    elif proxy_has_anthropic_key:
        env[AUTH_TOKEN_VARIABLE] = PLACEHOLDER_TOKEN
    return env


def proxy_env_for(
    template: Mapping[str, str],
    config: RouterConfig,
    environ: Mapping[str, str],
    host: str | None = None,
    port: int | None = None,
) -> dict[str, str]:
    """`proxy_env` for the configured proxy (or the `host`/`port` it was started with) and the
    environment it runs in (the process's, over the home's `.env`)."""
    has_key = any(
        provider.kind == "anthropic" and provider_api_key(provider, environ)
        for provider in config.providers.values()
    )
    return proxy_env(
        template,
        host or config.proxy.host,
        config.proxy.port if port is None else port,
        environ.get(TOKEN_ENV) or None,
        has_key,
    )
