"""The intent signal (core/intent.py): the shipped model, its vote and abstention, the user's
examples file rebuilding it, and every surface using the same model."""

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


def test_abstains_below_threshold(tmp_path: Path) -> None:
    model = intent.load_model(env(tmp_path))
    assert model is not None
    model.threshold = 1.01
    assert model.vote("write unit tests for the parser") is None


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


def test_hook_and_proxy_agree(tmp_path: Path) -> None:
    environ = env(tmp_path)
    settings = load_settings(environ)
    assert settings.intent is not None
    live = intent.LiveIntent(environ)
    table = settings.table
    for prompt in (
        "half the customers see a blank page since the release",
        "what does the pypi page say about the current httpx2 version",
        "rename tmp to buffer in parser.py",
    ):
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
    assert "intent model's vote decides" in result.output
    data = json.loads(
        runner.invoke(
            cli, ["route", "--explain", "--json", "grep for TODO"], env=env(tmp_path)
        ).output
    )
    assert data["explain"]["intent"]["probabilities"]
    assert data["explain"]["complexity"]["points"] >= 0
