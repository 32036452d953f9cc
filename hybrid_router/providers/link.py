"""One model on one backend, with what it takes to call it: a link of a fallback chain.

Shared by the proxy's chains and the MCP server's delegation chains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config.endpoints import provider_api_key, provider_base_url
from ..config.schema import Provider, RouterConfig


@dataclass(frozen=True, slots=True)
class Link:
    provider_name: str
    provider: Provider
    model: str
    base_url: str
    api_key: str | None  # the configured key (for Anthropic, None: the client's own auth is used)
    window: int | None  # the context window to respect, when known

    @property
    def label(self) -> str:
        return f"{self.provider_name}/{self.model}"

    @property
    def is_anthropic(self) -> bool:
        return self.provider.kind == "anthropic"


def make_link(
    config: RouterConfig,
    name: str,
    model: str,
    environ: Mapping[str, str],
    window: int | None = None,
) -> Link | None:
    """The link to `model` on the configured provider `name` (None if there is no such provider)."""
    provider = config.providers.get(name)
    if provider is None:
        return None
    return Link(
        name,
        provider,
        model,
        provider_base_url(provider, environ),
        provider_api_key(provider, environ),
        window,
    )
