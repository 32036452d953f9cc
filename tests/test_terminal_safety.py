"""Values from outside (model names the client chose, session ids, what a server reports) never
reach the terminal raw: every human-readable view escapes control characters; JSON stays exact."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hybrid_router.cli import cli
from hybrid_router.core.home import database_path
from hybrid_router.core.text import shown
from hybrid_router.log.database import connect
from hybrid_router.log.rows import DecisionRow, record

TITLE_CHANGE = "\x1b]0;pwned\x07"
CLEAR_SCREEN = "\x1b[2J"
CSI_C1 = "\x9b31m"


def test_shown_escapes_every_control_character_and_keeps_text():
    assert shown(f"claude{TITLE_CHANGE}x") == "claude\\x1b]0;pwned\\x07x"
    assert shown("a\nb\tc\rd") == "a\\x0ab\\x09c\\x0dd"
    assert shown(CSI_C1) == "\\x9b31m"
    assert shown("café ✓ 模型") == "café ✓ 模型"


def _seed(router_home) -> None:
    conn = connect(database_path())
    record(
        conn,
        DecisionRow(
            source="proxy",
            rule="default",
            provider="anthropic",
            model=f"claude-opus{TITLE_CHANGE}",
            outcome="ok",
            session_id=f"s{CLEAR_SCREEN}1",
            error_class=CSI_C1,
        ),
    )
    conn.close()


def test_logs_and_stats_escape_what_the_log_holds_and_json_stays_exact(router_home):
    _seed(router_home)
    for args in (["logs"], ["stats", "--recent", "5"], ["monitor", "--once"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x9b" not in result.output, args
        assert "\\x1b" in result.output, args
    exact = CliRunner().invoke(cli, ["logs", "--json"])
    assert json.loads(exact.output)["model"] == f"claude-opus{TITLE_CHANGE}"


def test_route_escapes_a_model_the_request_named(tmp_path, router_home):
    body = {
        "model": f"claude-opus{TITLE_CHANGE}",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "review the login code for sql injection"}],
    }
    (tmp_path / "body.json").write_text(json.dumps(body))
    result = CliRunner().invoke(cli, ["route", "--request", str(tmp_path / "body.json")])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\\x1b]0;pwned" in result.output
