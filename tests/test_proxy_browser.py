"""A web page cannot spend the proxy's keys or read its log (issue: loopback is no trust
boundary). What a browser sends — an `Origin`, cross-site fetch metadata, a form's text/plain
body, a rebound DNS name in `Host` — is refused with an Anthropic-shaped 403 before any upstream
is called, and the refusal has its row; Claude Code and the SDKs send none of it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from test_proxy_support import CLAUDE, CODE_PROMPT, rig

from hybrid_router.dashboard.app import create_dashboard_app

BODY = {"model": CLAUDE, "max_tokens": 50, "messages": [{"role": "user", "content": CODE_PROMPT}]}
PAGE = "https://evil.example"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": PAGE, "content-type": "text/plain"}, 403),  # fetch(..., {mode: "no-cors"})
        ({"origin": "null", "content-type": "text/plain"}, 403),  # a sandboxed or file:// page
        ({"sec-fetch-site": "cross-site", "content-type": "application/json"}, 403),
        ({"host": "evil.example:3000", "content-type": "application/json"}, 403),  # rebinding
        ({"content-type": "application/x-www-form-urlencoded"}, 415),  # a form, or curl -d
    ],
)
def test_what_a_web_page_sends_never_reaches_an_upstream(router_home: Path, headers, status):
    with rig(router_home) as r:
        sent = r.post(json.dumps(BODY).encode(), headers=headers)
        assert sent.status_code == status, sent.text
        assert sent.json()["type"] == "error"
        assert not r.ollama.requests_to("/api/chat") and not r.anthropic.messages_requests()
        (row,) = r.rows(1)
        assert row["outcome"] == "rejected"


def test_the_browser_check_covers_every_endpoint_and_claude_code_passes(router_home: Path):
    with rig(router_home) as r:
        for path in ("/", "/v1/models", "/dashboard/api/summary", "/dashboard"):
            assert httpx.get(f"{r.url}{path}", headers={"origin": PAGE}).status_code == 403
            assert httpx.get(f"{r.url}{path}", headers={"host": "evil.example"}).status_code == 403
        counted = httpx.post(
            f"{r.url}/v1/messages/count_tokens",
            content=json.dumps(BODY),
            headers={"origin": PAGE, "content-type": "text/plain"},
        )
        assert counted.status_code == 403
        assert httpx.get(f"{r.url}/dashboard/api/summary").status_code == 200
        assert r.post(BODY).status_code == 200  # no Origin, a loopback Host: as Claude Code


def test_listed_origins_and_hosts_are_served(router_home: Path):
    from test_proxy_support import config

    data = config()
    data["proxy"] |= {"allowedOrigins": ["http://localhost:5173"], "allowedHosts": ["devbox"]}
    with rig(router_home, config_data=data) as r:
        assert r.post(BODY, headers={"origin": "http://localhost:5173"}).status_code == 200
        assert r.post(BODY, headers={"host": "devbox:3000"}).status_code == 200


def test_the_standalone_dashboard_refuses_pages_and_rebinding(tmp_path: Path):
    from starlette.testclient import TestClient

    client = TestClient(create_dashboard_app(str(tmp_path / "d.db")), base_url="http://127.0.0.1")
    assert client.get("/dashboard/api/summary").status_code == 200
    assert client.get("/dashboard/api/summary", headers={"origin": PAGE}).status_code == 403
    rebound = TestClient(
        create_dashboard_app(str(tmp_path / "d.db")), base_url="http://evil.example"
    )
    assert rebound.get("/dashboard/api/summary").status_code == 403
