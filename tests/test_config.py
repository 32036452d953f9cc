import json
from pathlib import Path

import pytest

from hybrid_router.config.endpoints import provider_api_key, provider_base_url
from hybrid_router.config.loading import (
    ConfigError,
    default_config_path,
    load_config,
    parse_config,
    read_config_file,
    templates_dir,
)
from hybrid_router.core import home


def default_data() -> dict:
    return json.loads(default_config_path().read_text())


def write_config(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def error_for(data: dict, tmp_path: Path) -> str:
    path = write_config(tmp_path / "router-config.json", data)
    with pytest.raises(ConfigError) as caught:
        read_config_file(path)
    message = str(caught.value)
    assert "\n" not in message, "config errors are one line"
    assert message.startswith(str(path)), "config errors name the file"
    return message


def test_default_config_has_the_documented_routes_and_tiers():
    config = load_config().config
    assert [route.name for route in config.routes] == [
        "security",
        "critical",
        "web-search",
        "code-generation",
        "architecture",
        "file-operations",
    ]  # size is the context-window rule's: the local windows hold a Claude Code request
    assert list(config.tiers) == ["fast", "coder", "reasoning", "premium"]
    assert config.profile == "16gb"  # the embedded default is the 16 GB profile
    for name in ("fast", "coder", "reasoning"):
        assert config.tiers[name].model == "qwen3.5:9b"
        assert config.tiers[name].context_window == 131072
    assert config.tiers["premium"].provider == "anthropic"
    # claude-sonnet-4-5 reaches end of life on 2026-11-30: the default must not use it.
    assert not config.tiers["premium"].model.startswith("claude-sonnet-4-5")
    assert {"ollama", "openrouter", "anthropic"} <= set(config.providers)
    assert config.store_prompts is False


def test_embedded_default_is_used_until_init_writes_a_file(router_home):
    loaded = load_config()
    assert loaded.source is None
    write_config(router_home / "router-config.json", default_data())
    assert load_config().source == router_home / "router-config.json"


def test_user_file_changes_routing_without_code(router_home):
    data = default_data()
    data["tiers"]["fast"]["model"] = "phi4-mini"
    write_config(router_home / "router-config.json", data)
    assert load_config().config.tiers["fast"].model == "phi4-mini"


def test_seed_shaped_route_with_provider_and_model_target(tmp_path):
    data = default_data()
    data["routes"].insert(
        0,
        {
            "name": "docs",
            "description": "seed shape",
            "conditions": {
                "keywords": ["docstring"],
                "complexity": ["low"],
                "maxContextTokens": 8000,
            },
            "target": {"provider": "ollama", "model": "qwen2.5-coder:7b"},
            "reasoning": "cheap",
        },
    )
    config = parse_config(data, "x.json")
    assert config.routes[0].conditions.max_context_tokens == 8000
    assert config.routes[0].target.model == "qwen2.5-coder:7b"


def test_wrong_type_names_field_path_and_expectation(tmp_path):
    data = default_data()
    data["tiers"]["fast"]["contextWindow"] = "big"
    message = error_for(data, tmp_path)
    assert "tiers.fast.contextWindow" in message
    assert "integer" in message and '"big"' in message


def test_bad_complexity_value_is_named(tmp_path):
    data = default_data()
    data["routes"][0]["conditions"]["complexity"] = ["extreme"]
    message = error_for(data, tmp_path)
    assert "routes[0].conditions.complexity[0]" in message
    assert "'low', 'medium' or 'high'" in message


def test_unknown_field_is_rejected_with_its_path(tmp_path):
    data = default_data()
    data["routes"][1]["conditions"]["keyword"] = ["typo"]
    message = error_for(data, tmp_path)
    assert "routes[1].conditions.keyword" in message and "not a known field" in message


def test_missing_required_field(tmp_path):
    data = default_data()
    del data["routes"][2]["target"]
    assert "routes[2].target is required" in error_for(data, tmp_path)


def test_several_problems_are_counted_on_the_one_line(tmp_path):
    data = default_data()
    data["tiers"]["fast"]["contextWindow"] = -1
    data["tiers"]["coder"]["contextWindow"] = 0
    message = error_for(data, tmp_path)
    assert "(and 1 more problem)" in message


def test_unknown_tier_reference(tmp_path):
    data = default_data()
    data["routes"][4]["target"] = {"tier": "codr"}
    message = error_for(data, tmp_path)
    assert "routes[4].target.tier unknown tier 'codr'" in message
    assert "fast, coder, reasoning, premium" in message


def test_unknown_provider_reference(tmp_path):
    data = default_data()
    data["tiers"]["fast"]["provider"] = "olama"
    assert "tiers.fast.provider unknown provider 'olama'" in error_for(data, tmp_path)


def test_target_needs_tier_or_provider_and_model(tmp_path):
    data = default_data()
    data["routes"][0]["target"] = {"provider": "anthropic"}
    assert "routes[0].target expected a tier, or both provider and model" in error_for(
        data, tmp_path
    )


def test_bad_regex_pattern(tmp_path):
    data = default_data()
    data["routes"][0]["conditions"]["patterns"] = ["(unclosed"]
    message = error_for(data, tmp_path)
    assert "routes[0].conditions.patterns[0]" in message and "regular expression" in message


def test_duplicate_route_names(tmp_path):
    data = default_data()
    data["routes"][1]["name"] = data["routes"][0]["name"]
    assert "routes[1].name duplicate route name 'security'" in error_for(data, tmp_path)


def test_invalid_json_reports_line_and_column(tmp_path):
    path = tmp_path / "router-config.json"
    path.write_text('{\n  "routes": [,]\n}')
    with pytest.raises(ConfigError, match=r"router-config.json: line 2 column 14: invalid JSON"):
        read_config_file(path)


def test_templates_ship_the_default_config():
    assert (templates_dir() / "router-config.json").is_file()


def test_dotenv_parsing_handles_comments_quotes_and_export():
    parsed = home.parse_dotenv(
        "# keys\nexport OPENROUTER_API_KEY='sk-or-1'\nANTHROPIC_API_KEY=\"sk-ant-2\"\n"
        "OLLAMA_HOST=10.0.0.5:11434 # lab box\nnot a line\n=novalue\n"
    )
    assert parsed == {
        "OPENROUTER_API_KEY": "sk-or-1",
        "ANTHROPIC_API_KEY": "sk-ant-2",
        "OLLAMA_HOST": "10.0.0.5:11434",
    }


def test_keys_come_from_home_dotenv_and_the_environment_wins(router_home, monkeypatch):
    router_home.mkdir(parents=True)
    (router_home / ".env").write_text("OPENROUTER_API_KEY=from-file\nANTHROPIC_API_KEY=file-ant\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-shell")
    env = home.load_environment()
    config = load_config().config
    assert provider_api_key(config.providers["openrouter"], env) == "from-file"
    assert provider_api_key(config.providers["anthropic"], env) == "from-shell"
    assert provider_api_key(config.providers["ollama"], env) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:11500", "http://127.0.0.1:11500"),
        ("gpu-box", "http://gpu-box:11434"),
        ("https://ollama.example.test/", "https://ollama.example.test"),
        ("http://[::1]:11434", "http://[::1]:11434"),
    ],
)
def test_ollama_host_accepts_host_port_or_url(value, expected):
    config = load_config().config
    assert provider_base_url(config.providers["ollama"], {"OLLAMA_HOST": value}) == expected


def test_openrouter_and_anthropic_urls_can_point_anywhere():
    config = load_config().config
    env = {
        "HYBRID_ROUTER_OPENROUTER_URL": "http://127.0.0.1:9001/api/v1",
        "HYBRID_ROUTER_ANTHROPIC_URL": "http://127.0.0.1:9002",
    }
    assert provider_base_url(config.providers["openrouter"], env) == "http://127.0.0.1:9001/api/v1"
    assert provider_base_url(config.providers["anthropic"], env) == "http://127.0.0.1:9002"
    assert provider_base_url(config.providers["anthropic"], {}) == "https://api.anthropic.com"


def test_home_defaults_to_dot_hybrid_router(monkeypatch):
    monkeypatch.delenv("HYBRID_ROUTER_HOME")
    assert home.home_dir() == Path("~/.hybrid-router").expanduser()
