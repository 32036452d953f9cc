"""What a request cost, and what it would have cost on the model the client asked for.

Prices are US dollars per million tokens. Built-in table (Anthropic list prices; override any
entry with `prices` in router-config.json, keyed by an exact model name or a family name):

| family / model                         | input | output | cache read | cache write (5 min) |
| -------------------------------------- | ----- | ------ | ---------- | ------------------- |
| opus (4.5 and later, unknown versions) | 5     | 25     | 0.50       | 6.25                |
| claude-opus-4, -4-0, -4-1, claude-3-opus | 15  | 75     | 1.50       | 18.75               |
| sonnet (all versions)                  | 3     | 15     | 0.30       | 3.75                |
| haiku (4.5 and later, unknown versions)| 1     | 5      | 0.10       | 1.25                |
| claude-3-5-haiku                       | 0.80  | 4      | 0.08       | 1.00                |
| claude-3-haiku                         | 0.25  | 1.25   | 0.03       | 0.30                |
| any other Claude family (fable, mythos...) | priced as opus                               |
| OpenRouter models ending in `:free`    | 0     | 0      | 0          | 0                   |
| local providers (ollama, openai kind)  | 0     | 0      | 0          | 0                   |

When a configured price leaves out the cache rates, cache reads cost 0.1x and cache writes
1.25x its input rate, as on Anthropic. An unknown model on a paid provider (OpenRouter without
`:free`) is priced at 0 unless configured: the router cannot know its price, and overstating
savings is worse than understating them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core.usage import Usage
from .schema import Price, RouterConfig

PER_MILLION = 1_000_000


FREE = Price(input=0.0, output=0.0, cache_read=0.0, cache_write=0.0)

# Most specific first: the first prefix (after "claude-") that a model name starts with wins.
_VERSIONED = (
    ("claude-opus-4-0", Price(15.0, 75.0)),
    ("claude-opus-4-1", Price(15.0, 75.0)),
    ("claude-opus-4-2025", Price(15.0, 75.0)),
    ("claude-3-opus", Price(15.0, 75.0)),
    ("claude-3-5-haiku", Price(0.80, 4.0)),
    ("claude-3-haiku", Price(0.25, 1.25)),
)
_FAMILIES: dict[str, Price] = {
    "opus": Price(5.0, 25.0),
    "sonnet": Price(3.0, 15.0),
    "haiku": Price(1.0, 5.0),
}
_EXACT_OLD_OPUS = {"claude-opus-4"}


def claude_family(model: str) -> str | None:
    lowered = model.lower()
    for family in _FAMILIES:
        if family in lowered:
            return family
    return "opus" if lowered.startswith("claude") else None


def anthropic_price(model: str, overrides: Mapping[str, Price] | None = None) -> Price:
    """The price of a Claude model: exact override, built-in version, family override, family."""
    overrides = overrides or {}
    if model in overrides:
        return overrides[model]
    lowered = model.lower()
    if lowered in _EXACT_OLD_OPUS:
        return Price(15.0, 75.0)
    for prefix, price in _VERSIONED:
        if lowered.startswith(prefix):
            return price
    family = claude_family(model) or "opus"
    return overrides.get(family, _FAMILIES[family])


def price_for(provider_name: str, model: str, config: RouterConfig) -> Price:
    """The price the given provider charges for the model, per the table and the config."""
    if model in config.prices:
        return config.prices[model]
    provider = config.providers.get(provider_name)
    kind = provider.kind if provider is not None else None
    if kind == "anthropic":
        return anthropic_price(model, config.prices)
    if model.endswith(":free"):
        return FREE
    if provider_name in config.prices:
        return config.prices[provider_name]
    return FREE


def cost_of(usage: Usage, price: Price) -> float:
    cache_read = price.cache_read if price.cache_read is not None else price.input * 0.1
    cache_write = price.cache_write if price.cache_write is not None else price.input * 1.25
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    ) / PER_MILLION


def request_cost(provider_name: str, model: str, usage: Usage, config: RouterConfig) -> float:
    return cost_of(usage, price_for(provider_name, model, config))


def baseline_model(requested_model: str | None, config: RouterConfig) -> str:
    """What the request would have run on without the router.

    The model the client asked for when it is a Claude model (the proxy); otherwise — hook and CLI
    rows, or a custom model name — the configured premium tier's model.
    """
    if requested_model and claude_family(requested_model) is not None:
        return requested_model
    return config.tiers[config.premium_tier].model


def baseline_cost(requested_model: str | None, usage: Usage, config: RouterConfig) -> float:
    return cost_of(usage, anthropic_price(baseline_model(requested_model, config), config.prices))
