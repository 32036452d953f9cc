"""Hand-computed prices. Rates are dollars per million tokens."""

import json

import pytest

from hybrid_router.config.loading import default_config_path, load_config, parse_config
from hybrid_router.config.pricing import (
    anthropic_price,
    baseline_cost,
    baseline_model,
    request_cost,
)
from hybrid_router.core.usage import Usage


@pytest.fixture
def config():
    return load_config().config


def test_sonnet_with_cache_rates(config):
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_read_tokens=2_000_000,
        cache_write_tokens=400_000,
    )
    # 1M x $3 + 0.1M x $15 + 2M x $0.30 + 0.4M x $3.75 = 3 + 1.5 + 0.6 + 1.5
    assert request_cost("anthropic", "claude-sonnet-5", usage, config) == pytest.approx(6.6)


def test_current_opus_and_old_opus(config):
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    # current opus: 10k x $5 + 2k x $25 = 0.05 + 0.05
    assert request_cost("anthropic", "claude-opus-4-8", usage, config) == pytest.approx(0.10)
    # opus 4.1: 10k x $15 + 2k x $75 = 0.15 + 0.15
    assert request_cost("anthropic", "claude-opus-4-1-20250805", usage, config) == pytest.approx(
        0.30
    )


def test_haiku_generations():
    assert anthropic_price("claude-haiku-4-5-20251001").input == 1.0
    assert anthropic_price("claude-3-5-haiku-latest").output == 4.0
    assert anthropic_price("claude-3-haiku-20240307").input == 0.25


def test_unknown_claude_names_are_priced_by_family():
    assert anthropic_price("claude-sonnet-9-9").input == 3.0
    assert anthropic_price("claude-haiku-7").output == 5.0
    # an unknown family is priced like opus: savings are never overstated by a cheap guess
    assert anthropic_price("claude-mythos-5").input == 5.0


def test_local_and_free_models_cost_nothing(config):
    usage = Usage(input_tokens=50_000, output_tokens=5_000)
    assert request_cost("ollama", "qwen2.5-coder:7b", usage, config) == 0.0
    assert request_cost("openrouter", "qwen/qwen3-coder:free", usage, config) == 0.0
    assert request_cost("llamacpp", "smollm2", usage, config) == 0.0


def test_config_overrides_exact_model_family_and_provider():
    data = json.loads(default_config_path().read_text())
    data["prices"] = {
        "claude-sonnet-5": {"input": 2.0, "output": 10.0},
        "haiku": {"input": 0.5, "output": 2.5, "cacheRead": 0.01, "cacheWrite": 0.02},
        "openrouter": {"input": 0.1, "output": 0.2},
    }
    config = parse_config(data, "x.json")
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_read_tokens=1_000_000,
        cache_write_tokens=1_000_000,
    )
    # exact: 2 + 10 + cache read 0.1x input (0.2) + cache write 1.25x input (2.5)
    assert request_cost("anthropic", "claude-sonnet-5", usage, config) == pytest.approx(14.7)
    # family override with explicit cache rates: 0.5 + 2.5 + 0.01 + 0.02
    assert request_cost("anthropic", "claude-haiku-4-5", usage, config) == pytest.approx(3.03)
    # a paid OpenRouter model priced per provider: 0.1 + 0.2 + 0.01 + 0.125
    assert request_cost("openrouter", "some/model", usage, config) == pytest.approx(0.435)
    # ... while its :free models stay free
    assert request_cost("openrouter", "qwen/qwen3-coder:free", usage, config) == 0.0


def test_baseline_is_the_requested_claude_model_or_the_premium_model(config):
    usage = Usage(input_tokens=100_000, output_tokens=10_000)
    assert baseline_model("claude-opus-4-8", config) == "claude-opus-4-8"
    assert baseline_model(None, config) == "claude-sonnet-5"
    assert baseline_model("my-custom-alias", config) == "claude-sonnet-5"
    # opus: 0.1M x $5 + 0.01M x $25 = 0.5 + 0.25
    assert baseline_cost("claude-opus-4-8", usage, config) == pytest.approx(0.75)
    # sonnet: 0.1M x $3 + 0.01M x $15 = 0.3 + 0.15
    assert baseline_cost(None, usage, config) == pytest.approx(0.45)
