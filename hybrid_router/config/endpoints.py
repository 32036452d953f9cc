"""Where a provider is and how to authenticate to it: its base URL (the config's, or the
environment variable that overrides it) and its API key, read from the environment only."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..core.table import LOCAL_PROVIDER_KINDS
from .schema import Provider


def normalize_base_url(value: str, kind: str) -> str:
    """Accept `host`, `host:port` or a URL (Ollama's OLLAMA_HOST allows all three)."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = f"http://{value}"
        if kind == "ollama" and value.count(":") == 1:
            value += ":11434"
    return value


def provider_base_url(provider: Provider, environ: Mapping[str, str] | None = None) -> str:
    """The provider's base URL, overridden by its environment variable when that is set."""
    env = os.environ if environ is None else environ
    override = env.get(provider.base_url_env, "").strip() if provider.base_url_env else ""
    return normalize_base_url(override or provider.base_url, provider.kind)


def provider_api_key(provider: Provider, environ: Mapping[str, str]) -> str | None:
    """The provider's key from the environment (or the home `.env`); never logged or printed."""
    if not provider.api_key_env:
        return None
    return environ.get(provider.api_key_env) or None


def is_local(provider: Provider) -> bool:
    return provider.kind in LOCAL_PROVIDER_KINDS
