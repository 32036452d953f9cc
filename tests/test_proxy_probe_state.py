"""The proxy's view of `doctor`'s results: re-read when they change, and what makes local
routes fall back said at start-up."""

from __future__ import annotations

import time
from pathlib import Path

from test_proxy_support import CODE_PROMPT, CODER_MODEL, body, config, rig

from hybrid_router.config import parse_config
from hybrid_router.providers.probe import BackendReport, ModelReport, cache_path, save_reports
from hybrid_router.proxy import state as proxy_state
from hybrid_router.proxy.state import probe_warnings


def _report(tools: bool | None, reachable: bool = True) -> BackendReport:
    return BackendReport(
        provider="ollama",
        kind="ollama",
        base_url="http://127.0.0.1:11434",
        reachable=reachable,
        error=None if reachable else "connection refused",
        models=[ModelReport(CODER_MODEL, status="ok", present=True, tools=tools)],
    )


def test_a_backend_fixed_after_start_up_is_used_without_a_restart(router_home: Path, monkeypatch):
    monkeypatch.setattr(proxy_state, "REPORTS_RECHECK_SECONDS", 0.0)
    with rig(router_home) as r:
        environ = r.environ
        save_reports(cache_path(environ), [_report(tools=False)])  # doctor: no tool calls
        tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
        first = r.post(body(CODE_PROMPT, tools=tools))
        assert first.status_code == 200
        time.sleep(0.01)
        save_reports(cache_path(environ), [_report(tools=True)])  # fixed, doctor run again
        second = r.post(body(CODE_PROMPT, tools=tools))
        assert second.status_code == 200
        rows = r.rows(2)
        assert [row["provider"] for row in rows] == ["anthropic", "ollama"]
        assert "failed the tool-call probe" in rows[0]["reason"]  # the fallback row says why


def test_start_up_names_what_makes_local_routes_fall_back():
    parsed = parse_config(config(), "test.json")
    unreachable = probe_warnings([_report(tools=None, reachable=False)], parsed)
    assert len(unreachable) == 1 and "unreachable" in unreachable[0]
    no_tools = probe_warnings([_report(tools=False)], parsed)
    assert no_tools == [
        f"ollama/{CODER_MODEL} did not call a tool in the probe: requests that carry tools skip it"
    ]
    assert probe_warnings([_report(tools=True)], parsed) == []
