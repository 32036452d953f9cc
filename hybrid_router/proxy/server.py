"""`hybrid-router proxy`: run the app under uvicorn and say how to point Claude Code at it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from starlette.routing import BaseRoute

from ..config.endpoints import provider_api_key
from ..config.loading import load_config
from ..core import home
from ..core.access import TOKEN_ENV
from .app import create_app


def claude_code_settings(
    host: str, port: int, token: str | None, proxy_has_anthropic_key: bool
) -> dict:
    """The `env` block that sends Claude Code through this proxy."""
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    env = {"ANTHROPIC_BASE_URL": f"http://{shown_host}:{port}"}
    if token:
        env["ANTHROPIC_AUTH_TOKEN"] = token
    elif proxy_has_anthropic_key:
        env["ANTHROPIC_AUTH_TOKEN"] = "hybrid-router"  # the proxy holds the real key
    return {"env": env}


def serve(
    config_file: Path | None, host: str | None, port: int | None, mounted: Sequence[BaseRoute] = ()
) -> None:
    """Run the proxy (with `mounted` routes beside its own) until Ctrl-C."""
    import uvicorn

    environ = home.load_environment()
    config = load_config(config_file, environ).config
    host = host or config.proxy.host
    port = config.proxy.port if port is None else port
    token = environ.get(TOKEN_ENV) or None
    app = create_app(
        config_file, environ=dict(os.environ), host=host, config=config, mounted=mounted
    )
    anthropic_key = any(
        p.kind == "anthropic" and provider_api_key(p, environ) for p in config.providers.values()
    )
    settings = claude_code_settings(host, port, token, anthropic_key)
    print(f"hybrid-router proxy on http://{host}:{port}", file=sys.stderr)
    print(
        "Claude Code settings (~/.claude/settings.json or .claude/settings.json; "
        "`hybrid-router install --proxy` writes them):",
        file=sys.stderr,
    )
    print(json.dumps(settings, indent=2), file=sys.stderr)
    if not anthropic_key:
        print(
            "ANTHROPIC_API_KEY is not set for the proxy: keep your own key (or login token) in "
            "Claude Code; the proxy forwards it to Anthropic for the premium routes.",
            file=sys.stderr,
        )
    # uvloop and httptools (when installed, as the package requires) make the server side of
    # every request several times cheaper than asyncio + h11 in pure Python.
    uvicorn.run(
        app, host=host, port=port, log_level="warning", access_log=False, loop="auto", http="auto"
    )
