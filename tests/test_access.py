"""Who may use the proxy and the dashboard: the browser checks (Origin, Sec-Fetch-Site, Host)."""

from __future__ import annotations

import pytest

from hybrid_router.core.access import browser_refusal, host_name


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:3000", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]:3000", "::1"),
        ("LOCALHOST:80", "localhost"),
        ("evil.example:3000", "evil.example"),
    ],
)
def test_host_name_drops_the_port(header, name):
    assert host_name(header) == name


def test_claude_code_and_curl_send_neither_header_and_pass():
    assert browser_refusal({"host": "127.0.0.1:3000"}, token=None) is None
    assert browser_refusal({"host": "localhost:3000"}, token=None) is None
    assert browser_refusal({"host": "[::1]:3000"}, token=None) is None


def test_a_web_page_is_refused_unless_its_origin_is_listed_or_the_servers_own():
    page = {"host": "127.0.0.1:3000", "origin": "https://evil.example"}
    assert "proxy.allowedOrigins" in browser_refusal(page, token=None)
    assert browser_refusal(page, token=None, allowed_origins=["https://evil.example"]) is None
    sandboxed = {"host": "127.0.0.1:3000", "origin": "null"}  # a file:// page or a sandbox
    assert browser_refusal(sandboxed, token=None) is not None
    own = {"host": "127.0.0.1:3000", "origin": "http://127.0.0.1:3000"}  # the dashboard itself
    assert browser_refusal(own, token=None) is None
    assert browser_refusal(page, token="s3cret") is not None  # a token does not vouch for pages


def test_a_cross_site_fetch_metadata_header_alone_is_refused():
    headers = {"host": "127.0.0.1:3000", "sec-fetch-site": "cross-site"}
    assert browser_refusal(headers, token=None) is not None
    same_origin = {"host": "127.0.0.1:3000", "sec-fetch-site": "same-origin"}
    assert browser_refusal(same_origin, token=None) is None


def test_dns_rebinding_is_refused_without_a_token_and_the_token_is_the_gate_with_one():
    rebound = {"host": "evil.example:3000"}
    assert "proxy.allowedHosts" in browser_refusal(rebound, token=None)
    assert browser_refusal(rebound, token=None, allowed_hosts=["evil.example"]) is None
    lan = {"host": "workstation.lan:3000"}
    assert browser_refusal(lan, token="s3cret") is None
