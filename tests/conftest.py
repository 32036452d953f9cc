"""Every test runs with its own tool home, and with no provider overrides leaking in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["conftest_llama"]  # the session-scoped `llama_server` fixture (real llama.cpp)

_LEAKY_ENV = (
    "HYBRID_ROUTER_CONFIG",
    "OLLAMA_HOST",
    "HYBRID_ROUTER_OPENROUTER_URL",
    "HYBRID_ROUTER_ANTHROPIC_URL",
    "HYBRID_ROUTER_LLAMACPP_URL",
    "OPENROUTER_API_KEY",
    "ANTHROPIC_API_KEY",
)


@pytest.fixture(autouse=True)
def router_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "router-home"
    monkeypatch.setenv("HYBRID_ROUTER_HOME", str(home))
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def seed_profile(router_home: Path) -> Path:
    """The `seed` profile's config in the test's home: three local tiers with three different
    models (fast qwen2.5-coder:7b, coder deepseek-coder:33b, reasoning llama3:70b), so a test of
    the mechanics can tell the tiers apart by model (the embedded default, the 16gb profile,
    runs one model in all three)."""
    import json

    from proxy_server import config_data

    router_home.mkdir(parents=True, exist_ok=True)
    path = router_home / "router-config.json"
    path.write_text(json.dumps(config_data()))
    return path
