"""The hard rules and the route mechanics of decide(); the per-category keyword tables live in
test_routing_categories.py."""

import json
from functools import cache

from claude_code_bodies import claude_code_body, title_generation_body, with_tool_round_trip
from proxy_server import config_data

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, load_config, parse_config
from hybrid_router.config.schema import RouterConfig
from hybrid_router.core.routing import IntentVote, decide, model_for
from hybrid_router.core.signals import Signals, signals_from_prompt, signals_from_request


@cache
def default_config() -> RouterConfig:
    """The rules' mechanics are tested on the `seed` profile: three local tiers with three
    models and small windows (fast 32K, coder 16K, reasoning 8K), so escalation and the size
    rules show. The embedded default (the 16gb profile) has its own tests at the end."""
    return parse_config(config_data(), "seed-profile.json")


def config_with(**changes) -> RouterConfig:
    data = config_data()
    data.update(changes)
    return parse_config(data, "test-config.json")


def test_web_server_tools_go_to_anthropic_whatever_the_prompt_says():
    body = claude_code_body(
        "list the files in src",
        extra_tools=[{"type": "web_search_20250305", "name": "web_search"}],
    )
    decision = decide(signals_from_request(body), routing_table(default_config()))
    assert (decision.provider, decision.rule) == ("anthropic", "web-tools")
    assert "web_search_20250305" in decision.reason


def test_haiku_requests_are_background_work_for_the_fast_local_model():
    body = claude_code_body("summarize", model="claude-haiku-4-5-20251001", tool_count=3)
    decision = decide(signals_from_request(body), routing_table(default_config()))
    assert (decision.provider, decision.model, decision.rule) == (
        "ollama",
        "qwen2.5-coder:7b",
        "background",
    )


def test_title_generation_with_a_custom_small_model_name_is_background():
    decision = decide(
        signals_from_request(title_generation_body("x", model="dh-model")),
        routing_table(default_config()),
    )
    assert decision.rule == "background"
    assert decision.tier == "fast"


def test_background_model_patterns_are_configurable():
    config = config_with(background={"modelPatterns": ["mini"], "target": {"tier": "fast"}})
    body = claude_code_body("hello there", model="gpt-mini", tool_count=0)
    body["max_tokens"] = 1000
    assert decide(signals_from_request(body), routing_table(config)).rule == "background"
    body["model"] = "claude-haiku-4-5"
    assert decide(signals_from_request(body), routing_table(config)).rule != "background"


def test_a_request_too_big_for_its_tier_moves_to_the_next_tier_that_fits():
    # 20k tokens: fits the fast tier (32k) but not the coder tier (16k) nor reasoning (8k).
    signals = Signals(text="refactor the parser", estimated_tokens=20_000)
    decision = decide(signals, routing_table(default_config()))
    assert decision.rule == "context-window"
    assert (decision.provider, decision.tier) == ("anthropic", "premium")
    assert "16,384-token window of deepseek-coder:33b" in decision.reason
    assert "code-generation" in decision.reason


def test_escalation_never_goes_down_the_tier_order():
    # coder comes after fast: a coder request that no longer fits does not drop to fast (32k).
    signals = Signals(text="write tests", estimated_tokens=14_000)
    decision = decide(signals, routing_table(default_config()))
    assert decision.tier == "premium"


def test_room_for_the_answer_counts_but_not_claude_codes_whole_max_tokens():
    fits = Signals(text="read a.py", estimated_tokens=32768 - 4096)
    tight = Signals(text="read a.py", estimated_tokens=32768 - 4095)
    # below the large-context route's 32,001 tokens, so only the window decides
    big_answer = Signals(text="read a.py", estimated_tokens=31_000)
    small_answer = Signals(text="read a.py", estimated_tokens=31_000, max_tokens=100)
    assert decide(fits, routing_table(default_config())).tier == "fast"
    assert decide(tight, routing_table(default_config())).tier == "premium"
    assert decide(big_answer, routing_table(default_config())).tier == "premium"
    assert decide(small_answer, routing_table(default_config())).tier == "fast"


def test_a_full_claude_code_request_is_too_big_for_the_default_coder_tier():
    # The honest trade-off: Claude Code's own system prompt and tools are ~20k tokens.
    decision = decide(
        signals_from_request(claude_code_body("write a test")), routing_table(default_config())
    )
    assert decision.rule == "context-window"
    assert decision.provider == "anthropic"


def test_large_context_route_sends_long_requests_to_anthropic():
    signals = Signals(text="rename foo to bar", estimated_tokens=40_000)
    decision = decide(signals, routing_table(default_config()))
    assert (decision.rule, decision.provider) == ("large-context", "anthropic")
    assert "40,000 tokens" in decision.reason


def test_request_that_names_a_claude_model_keeps_it_on_anthropic():
    body = claude_code_body("review this for sql injection", model="claude-opus-4-8", tool_count=2)
    decision = decide(signals_from_request(body), routing_table(default_config()))
    assert (decision.provider, decision.model) == ("anthropic", "claude-opus-4-8")


def test_custom_model_names_get_the_configured_premium_model():
    body = claude_code_body("review this for sql injection", model="my-gateway-alias", tool_count=2)
    decision = decide(signals_from_request(body), routing_table(default_config()))
    assert decision.model == default_config().tiers["premium"].model


def test_local_routes_ignore_the_requested_claude_model():
    body = claude_code_body("read main.py", model="claude-sonnet-5", tool_count=1)
    decision = decide(signals_from_request(body), routing_table(default_config()))
    assert (decision.provider, decision.model) == ("ollama", "qwen2.5-coder:7b")


def test_tool_continuation_routes_on_the_turns_prompt():
    body = with_tool_round_trip(claude_code_body("grep for TODO", tool_count=1))
    decision = decide(signals_from_request(body), routing_table(default_config()))
    assert decision.rule == "file-operations"


def test_unmatched_prompts_take_the_default_route():
    decision = decide(signals_from_prompt("hello"), routing_table(default_config()))
    assert (decision.rule, decision.reason, decision.tier) == (
        "default",
        "no route matched",
        "coder",
    )


def test_first_matching_route_wins_in_file_order():
    data = json.loads(default_config_path().read_text())
    data["routes"].insert(
        0, {"name": "mine", "conditions": {"keywords": ["injection"]}, "target": {"tier": "fast"}}
    )
    config = parse_config(data, "x.json")
    assert (
        decide(signals_from_prompt("check for sql injection"), routing_table(config)).rule == "mine"
    )


def test_explicit_provider_model_target_and_its_window():
    data = json.loads(default_config_path().read_text())
    data["routes"].insert(
        0,
        {
            "name": "lab",
            "conditions": {"keywords": ["benchmark*"]},
            "target": {"provider": "llamacpp", "model": "smollm2", "contextWindow": 2048},
        },
    )
    config = parse_config(data, "x.json")
    small = decide(
        Signals(text="benchmark this", estimated_tokens=100, max_tokens=500), routing_table(config)
    )
    assert (small.provider, small.model, small.tier) == ("llamacpp", "smollm2", None)
    big = decide(Signals(text="benchmark this", estimated_tokens=5000), routing_table(config))
    assert big.rule == "context-window" and big.tier == "fast"


def test_token_bounds_and_complexity_conditions():
    data = json.loads(default_config_path().read_text())
    data["routes"] = [
        {
            "name": "small-high",
            "conditions": {"maxContextTokens": 1000, "complexity": ["high"]},
            "target": {"tier": "premium"},
        },
    ]
    config = parse_config(data, "x.json")
    long_task = (
        "Refactor the session layer across the entire codebase for concurrency, then migrate "
        "the schema, then update every module and finally document the design trade-offs."
    )
    assert decide(signals_from_prompt(long_task), routing_table(config)).rule == "small-high"
    assert decide(signals_from_prompt("hi"), routing_table(config)).rule == "default"
    huge = signals_from_prompt(long_task).replace(estimated_tokens=5000)
    assert decide(huge, routing_table(config)).rule == "default"


def test_decision_serializes_with_the_documented_fields():
    data = decide(
        signals_from_prompt("explain how routing works"), routing_table(default_config())
    ).to_dict()
    assert {"provider", "model", "rule", "reason", "complexity", "estimated_tokens"} <= set(data)
    assert data["fallbacks"] == [
        {"provider": "openrouter", "model": "meta-llama/llama-3.3-70b-instruct:free"}
    ]


def test_exclusions_also_cancel_pattern_matches():
    # "git fetch https://..." is a git operation, not browsing, although the URL pattern matches it.
    decision = decide(
        signals_from_prompt("git fetch https://github.com/org/repo.git main"),
        routing_table(default_config()),
    )
    assert decision.rule != "web-search"
    assert (
        decide(
            signals_from_prompt("fetch https://example.com/changelog"),
            routing_table(default_config()),
        ).rule
        == "web-search"
    )


def test_asking_for_the_latest_version_is_a_web_question_but_upgrading_is_code_work():
    assert (
        decide(
            signals_from_prompt("what's the latest version of pydantic?"),
            routing_table(default_config()),
        ).rule
        == "web-search"
    )
    assert (
        decide(
            signals_from_prompt("bump ruff to the latest version"), routing_table(default_config())
        ).rule
        != "web-search"
    )


def test_a_repeated_prompt_routes_on_the_request_not_on_a_remembered_decision():
    """The prompt's analysis is remembered (a turn's tool-result requests repeat its prompt),
    but what depends on the request — its size, the table — is decided afresh every time."""
    prompt = "refactor the retry logic in client.py and add tests for it"
    small = decide(signals_from_prompt(prompt), routing_table(default_config()))
    assert (small.rule, small.tier) == ("code-generation", "coder")
    big = decide(Signals(text=prompt, estimated_tokens=50_000), routing_table(default_config()))
    assert big.rule == "large-context" and big.tier == "premium"
    again = decide(signals_from_prompt(prompt), routing_table(default_config()))
    assert (again.rule, again.tier, again.matched) == (small.rule, small.tier, small.matched)
    routes = json.loads(default_config_path().read_text())["routes"]
    without_code = [r for r in routes if r["name"] != "code-generation"]
    other_table = decide(
        signals_from_prompt(prompt), routing_table(config_with(routes=without_code))
    )
    assert other_table.rule != "code-generation"


# --- a second signal plugged into decide() -------------------------------------------------------


def test_a_confident_intent_vote_decides_the_route_in_either_direction():
    table = routing_table(default_config())
    no_keyword = "can one tenant read another's invoices by changing the id in the url?"
    assert decide(signals_from_prompt(no_keyword), table).provider == "ollama"  # words miss it

    def security_intent(text: str) -> IntentVote | None:
        return IntentVote("security", 0.93, "test-embedding") if "tenant" in text else None

    decision = decide(signals_from_prompt(no_keyword), table, security_intent)
    assert (decision.rule, decision.provider) == ("security", "anthropic")
    assert "test-embedding intent, confidence 0.93" in decision.reason

    near_miss = "rename the password field to secret in the login form"  # a keyword, no intent
    assert decide(signals_from_prompt(near_miss), table).rule == "security"
    cleared = decide(
        signals_from_prompt(near_miss), table, lambda _: IntentVote("code-generation", 0.9, "t")
    )
    assert (cleared.rule, cleared.provider) == ("code-generation", "ollama")


def test_an_abstaining_or_unknown_vote_leaves_the_keywords_and_hard_rules_win():
    table = routing_table(default_config())
    prompt = signals_from_prompt("write unit tests for parser.py")
    assert decide(prompt, table, lambda _: None).rule == "code-generation"
    assert decide(prompt, table, lambda _: IntentVote("no-such-route", 1.0, "t")).rule == (
        "code-generation"
    )
    title = signals_from_request(title_generation_body("fix the tenant check"))
    voted = decide(title, table, lambda _: IntentVote("security", 1.0, "t"))
    assert voted.rule == "background"


def test_anthropic_keeps_the_clients_claude_model_and_nothing_else_does():
    assert model_for("anthropic", "claude-sonnet-5", "claude-opus-4-5") == "claude-opus-4-5"
    assert model_for("anthropic", "claude-sonnet-5", "gpt-4o") == "claude-sonnet-5"
    assert model_for("ollama", "qwen3-coder:30b", "claude-opus-4-5") == "qwen3-coder:30b"


# --- free cloud before premium on size ------------------------------------------------------------


def _with_free_windows(window: int = 262_144, **changes: object) -> RouterConfig:
    """The default config with stated windows on the free fallbacks, and size left to the
    context-window rule (no `large-context` route), as the model profiles have it."""
    data = config_data()
    data["routes"] = [r for r in data["routes"] if r["name"] != "large-context"]
    for tier in data["tiers"].values():
        for fallback in tier.get("fallbacks", []):
            if fallback.get("model", "").endswith(":free"):
                fallback["contextWindow"] = window
    data.update(changes)
    return parse_config(data, "test-config.json")


def test_a_request_too_large_for_every_local_window_tries_a_free_cloud_model_first():
    table = routing_table(_with_free_windows())
    big = Signals(text="write tests for the parser", estimated_tokens=90_000, max_tokens=4096)
    decision = decide(big, table)
    assert (decision.rule, decision.provider) == ("context-window", "openrouter")
    assert decision.model.endswith(":free")
    assert "free cloud model" in decision.reason and "before the premium tier" in decision.reason


def test_free_cloud_on_size_needs_a_window_that_fits_and_can_be_turned_off():
    big = Signals(text="write tests for the parser", estimated_tokens=90_000, max_tokens=4096)
    too_small = decide(big, routing_table(_with_free_windows(window=65_536)))
    assert too_small.provider == "anthropic"
    unstated = decide(big, routing_table(default_config()))  # no window in the config: not tried
    assert unstated.provider == "anthropic"
    off = decide(big, routing_table(_with_free_windows(freeCloudOnSize=False)))
    assert off.provider == "anthropic"


def test_premium_work_never_goes_to_the_free_cloud_on_size():
    table = routing_table(_with_free_windows())
    review = Signals(text="review the login handler for sql injection", estimated_tokens=90_000)
    assert decide(review, table).provider == "anthropic"


# --- the embedded default: the 16gb profile ---------------------------------------------------


def test_the_embedded_default_keeps_a_real_claude_code_request_local():
    """A full Claude Code request (~20K tokens of system prompt and tools) fits the default's
    local windows: code generation runs on the local coder tier, a security review does not."""
    table = routing_table(load_config(default_config_path()).config)
    code = decide(signals_from_request(claude_code_body("write tests for the parser")), table)
    assert (code.provider, code.tier, code.rule) == ("ollama", "coder", "code-generation")
    review = claude_code_body("review the login handler for sql injection")
    assert decide(signals_from_request(review), table).provider == "anthropic"
    huge = Signals(text="write tests for the parser", estimated_tokens=150_000, max_tokens=4096)
    too_big = decide(huge, table)  # over every local window: the free cloud model first
    assert (too_big.rule, too_big.provider) == ("context-window", "openrouter")


def test_a_decisive_vote_picks_among_local_routes_an_unsure_one_leaves_the_keywords():
    table = routing_table(default_config())
    prompt = signals_from_prompt("grep for TODO in the source")
    assert decide(prompt, table).rule == "file-operations"
    decisive = decide(prompt, table, lambda _: IntentVote("code-generation", 0.9, "t"))
    assert decisive.rule == "code-generation"
    unsure = decide(prompt, table, lambda _: IntentVote("code-generation", 0.3, "t", False))
    assert unsure.rule == "file-operations" and "under its threshold" in unsure.reason


def test_an_unsure_vote_lets_a_premium_route_named_by_either_signal_win():
    """A premium miss (a security review done by a small local model) costs more than a paid
    turn that could have run free: when the vote is unsure, premium wins from either side."""
    table = routing_table(default_config())
    keyword_premium = signals_from_prompt("harden the ssh config on the bastion host")
    assert decide(keyword_premium, table).rule == "security"
    kept = decide(keyword_premium, table, lambda _: IntentVote("default", 0.37, "t", False))
    assert (kept.rule, kept.tier) == ("security", "premium")
    cleared = decide(keyword_premium, table, lambda _: IntentVote("default", 0.8, "t"))
    assert cleared.tier != "premium"  # a decisive vote clears the near-miss
    no_keyword = signals_from_prompt("what's the weather like in berlin tomorrow")
    assert decide(no_keyword, table).tier != "premium"
    voted = decide(no_keyword, table, lambda _: IntentVote("web-search", 0.3, "t", False))
    assert (voted.rule, voted.tier) == ("web-search", "premium")
    # nothing premium on either side, no keyword: the unsure vote beats the bare default route
    plain = signals_from_prompt("zorp the blarg")
    assert decide(plain, table).rule == "default"
    assert decide(plain, table, lambda _: IntentVote("architecture", 0.3, "t", False)).rule == (
        "architecture"
    )


def test_when_the_vote_agrees_the_keywords_evidence_stays_in_the_reason():
    table = routing_table(default_config())
    prompt = signals_from_prompt("review the login handler for sql injection")
    decision = decide(prompt, table, lambda _: IntentVote("security", 0.95, "t"))
    assert decision.rule == "security" and '"sql injection"' in decision.reason
    assert "t intent, confidence 0.95" in decision.reason and decision.matched
