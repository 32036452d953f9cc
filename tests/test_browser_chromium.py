"""The browser attacks of issue 13 (point 1) in a real headless Chromium (Debian's `chromium`;
skipped when it is absent): a page served from another origin POSTs to the proxy with
`fetch(..., {mode: "no-cors"})` and a text/plain body, and with an `enctype=text/plain` form;
a name rebound to 127.0.0.1 (DNS rebinding, here Chromium's host resolver rules) reads the
dashboard's JSON. Each is refused before any upstream is called, and the refusals have rows."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from test_dashboard import run_chromium
from test_proxy_support import CLAUDE, rig

BODY = {"model": CLAUDE, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def attack_page(proxy: str) -> str:
    """What a web page can send without a CORS preflight: a no-cors fetch and a form."""
    body = json.dumps(BODY)
    name, value = body[:-1] + ', "padding": "', '"}'  # the form's text/plain body is name=value
    return f"""<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="{proxy}/v1/messages" enctype="text/plain" target="sink">
  <input type="hidden" name='{name}' value='{value}'>
</form>
<script>
  document.getElementById("form").submit();
  fetch("{proxy}/v1/messages", {{
    method: "POST", mode: "no-cors", headers: {{"content-type": "text/plain"}},
    body: {json.dumps(body)}
  }}).then(() => document.body.dataset.fetched = "yes",
           () => document.body.dataset.fetched = "failed");
  fetch("{proxy}/dashboard/api/summary", {{mode: "no-cors"}})
    .then(() => document.body.dataset.summary = "sent");
</script>
</body></html>"""


@contextmanager
def page_server(html: str) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (another port: another origin) serving `html` at /."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
            data = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_from_another_origin_cannot_spend_the_keys(
    router_home: Path, tmp_path: Path
) -> None:
    with rig(router_home, env={"ANTHROPIC_API_KEY": "sk-ant-proxy-own-key"}) as r:
        with page_server(attack_page(r.url)) as page:
            dom = run_chromium(tmp_path, "--dump-dom", f"{page}/", budget_ms=5000)
        assert 'data-fetched="yes"' in dom  # the browser did send it (an opaque answer)
        assert not r.ollama.requests_to("/api/chat") and not r.anthropic.messages_requests()
        rows = r.rows(2)  # the fetch and the form: refused, each with its row
    assert {row["outcome"] for row in rows} == {"rejected"}
    assert {row["error_class"] for row in rows} == {"browser"}


def test_a_rebound_name_cannot_read_the_dashboard(router_home: Path, tmp_path: Path) -> None:
    with rig(router_home) as r:
        port = r.url.rsplit(":", 1)[1]
        rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
        own = run_chromium(tmp_path, "--dump-dom", f"{r.url}/dashboard/api/summary")
        rebound = run_chromium(
            tmp_path, rules, "--dump-dom", f"http://evil.example:{port}/dashboard/api/summary"
        )
        page = run_chromium(tmp_path, rules, "--dump-dom", f"http://evil.example:{port}/dashboard")
    assert '"totals"' in own  # the machine's own browser, on a loopback name: served
    assert '"totals"' not in rebound and "permission_error" in rebound
    assert "<svg" not in page and "permission_error" in page
