"""The intent signal (core/intent.py): the shipped model, its vote (decisive or unsure), the
user's examples file rebuilding it, the cache file read on demand, and every surface using the
same model."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from hybrid_router.cli import cli
from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, load_config
from hybrid_router.core import intent
from hybrid_router.core.routing import decide
from hybrid_router.core.signals import signals_from_prompt
from hybrid_router.hooks.events import decide_prompt
from hybrid_router.hooks.table_cache import load_settings


def env(home: Path) -> dict[str, str]:
    return {"HYBRID_ROUTER_HOME": str(home)}


def test_shipped_model_reads_intent_without_keywords(tmp_path: Path) -> None:
    model = intent.load_model(env(tmp_path))
    assert model is not None
    table = routing_table(load_config(default_config_path()).config)
    leak = "can one tenant read another tenant's invoices by changing the id in the url?"
    decision = decide(signals_from_prompt(leak), table, model)
    assert decision.rule == "security" and decision.tier == "premium"
    assert "learned intent" in decision.reason
    # and clears a keyword near-miss: a password field is code work, not security work
    field = decide(signals_from_prompt("add a password field to the signup form"), table, model)
    assert field.rule == "code-generation"


def test_a_vote_under_the_threshold_is_unsure(tmp_path: Path) -> None:
    model = intent.load_model(env(tmp_path))
    assert model is not None
    assert model.vote("write unit tests for the parser").decisive
    model.threshold = 1.01
    model._votes.clear()
    vote = model.vote("write unit tests for the parser")
    assert (vote.route, vote.decisive) == ("code-generation", False)


def test_cache_and_user_examples_rebuild(tmp_path: Path) -> None:
    environ = env(tmp_path)
    prompt = "give the flux capacitor a frobnication pass"
    first = intent.load_model(environ)
    assert first is not None
    cache = tmp_path / "cache" / intent.CACHE_FILENAME
    assert cache.exists()
    examples = tmp_path / intent.EXAMPLES_FILENAME
    lines = [
        {"prompt": "give the flux capacitor a frobnication pass", "route": "security"},
        {"prompt": "frobnication pass over the flux capacitor module", "route": "security"},
        {"prompt": "not json"},
    ]
    examples.write_text("\n".join(json.dumps(line) for line in lines) + "\nbroken\n")
    tuned = intent.load_model(environ)
    assert tuned is not None
    assert tuned.probabilities(prompt)[0][0] == "security"
    again = intent.load_model(environ)  # from the cache now
    assert again is not None and again.weights == tuned.weights


PROMPTS = (
    "half the customers see a blank page since the release",
    "what does the pypi page say about the current httpx2 version",
    "rename tmp to buffer in parser.py",
)


def _probabilities(model: intent.IntentModel) -> list[list[tuple[str, float]]]:
    return [model.probabilities(prompt) for prompt in PROMPTS]


def test_a_broken_or_foreign_cache_is_rebuilt(tmp_path: Path) -> None:
    environ = env(tmp_path)
    first = intent.load_model(environ)
    assert first is not None
    expected = _probabilities(first)
    cache = tmp_path / "cache" / intent.CACHE_FILENAME
    whole = cache.read_bytes()
    for broken in (whole[: len(whole) // 2], b"not a cache at all", b""):
        cache.write_bytes(broken)
        rebuilt = intent.load_model(environ)
        assert rebuilt is not None and _probabilities(rebuilt) == expected
        assert cache.read_bytes() == whole  # written again, whole


def test_a_read_only_home_scores_with_the_same_numbers(tmp_path: Path) -> None:
    cached = intent.load_model(env(tmp_path / "writable"))
    assert cached is not None
    home = tmp_path / "read-only"
    home.mkdir()
    (home / "cache").write_text("a file where the cache folder would be")  # cannot write
    uncached = intent.load_model(env(home))
    assert uncached is not None and _probabilities(uncached) == _probabilities(cached)


def test_a_cache_replaced_under_a_running_process_keeps_its_model_whole(tmp_path: Path) -> None:
    """The proxy holds the cache open; a hook rebuilding it (new examples) replaces the file,
    and the proxy's model reads the file it opened until it looks again."""
    environ = env(tmp_path)
    running = intent.load_model(environ)
    assert running is not None
    before = _probabilities(running)
    examples = tmp_path / intent.EXAMPLES_FILENAME
    examples.write_text(json.dumps({"prompt": PROMPTS[2], "route": "security"}) + "\n")
    retuned = intent.load_model(environ)  # writes a new cache file in place of the old one
    assert retuned is not None and _probabilities(retuned) != before
    assert _probabilities(running) == before  # its weights still read from the file it opened


def test_a_lone_surrogate_in_a_prompt_or_an_example_is_scored(tmp_path: Path) -> None:
    """JSON can carry "\\ud800" (a lone surrogate) into a prompt or the user's examples: the
    model still scores it, from the cache file and in memory alike."""
    environ = env(tmp_path)
    odd = "review the login handler \ud800 for sql injection"
    examples = tmp_path / intent.EXAMPLES_FILENAME
    examples.write_text(json.dumps({"prompt": odd, "route": "security"}) + "\n")
    model = intent.load_model(environ)
    assert model is not None and (tmp_path / "cache" / intent.CACHE_FILENAME).exists()
    assert model.vote(odd).route == "security"
    assert "\ud800" in model.weights  # written to the cache file and read back


def test_hook_and_proxy_agree(tmp_path: Path) -> None:
    environ = env(tmp_path)
    settings = load_settings(environ)
    assert settings.intent is not None
    live = intent.LiveIntent(environ)
    table = settings.table
    for prompt in PROMPTS:
        hooked = decide_prompt(prompt, "s", settings)
        proxied = decide(signals_from_prompt(prompt, "s"), table, live)
        assert (hooked.rule, hooked.model) == (proxied.rule, proxied.model), prompt


def test_long_prompt_reads_both_ends() -> None:
    text = "x " * 40000 + "is the site down for everyone?"
    found = intent.features(text)
    assert "down" in found and len(found) < 50


def test_route_explain(tmp_path: Path, monkeypatch: object) -> None:
    os.environ["HYBRID_ROUTER_HOME"] = str(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["route", "--explain", "add a password field to the signup form"], env=env(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "intent      vote: code-generation" in result.output
    assert "security" in result.output and "password" in result.output
    assert "a decisive intent vote" in result.output and "(decisive)" in result.output
    data = json.loads(
        runner.invoke(
            cli, ["route", "--explain", "--json", "grep for TODO"], env=env(tmp_path)
        ).output
    )
    assert data["explain"]["intent"]["probabilities"]
    assert data["explain"]["complexity"]["points"] >= 0
