"""`hybrid-router claude`: the real Claude Code CLI launched through the proxy in one command."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from claude_cli import NODE_DIR, VENV_BIN, claude_binary, claude_env
from fakes.fake_anthropic import FakeAnthropic, text
from proxy_server import config_data, free_port

from hybrid_router.proxy.server import IdleExit

SCRIPT = VENV_BIN / "hybrid-router"
SECURITY_PROMPT = "review the login handler for sql injection"


def _launch(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "claude", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=150,
        check=False,
    )


def _stop_started_proxy(home: Path) -> None:
    pid_file = home / "logs" / "proxy.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_the_launcher_starts_one_proxy_and_runs_claude_through_it(tmp_path, router_home):
    claude_binary()
    port = free_port()
    data = config_data()
    data["proxy"] |= {"port": port, "probeOnStart": False}
    router_home.mkdir(parents=True, exist_ok=True)
    (router_home / "router-config.json").write_text(json.dumps(data))
    with FakeAnthropic() as fake:
        fake.enqueue(text("No injection: the query is parameterised."), text("Still safe."))
        env, _, config_dir = claude_env(
            "http://127.0.0.1:9",
            tmp_path,
            {
                "ANTHROPIC_BASE_URL": None,  # the launcher sets it
                "HYBRID_ROUTER_ANTHROPIC_URL": fake.url,
                "PATH": f"{NODE_DIR / 'node_modules' / '.bin'}{os.pathsep}{VENV_BIN}"
                f"{os.pathsep}{os.environ['PATH']}",
            },
        )
        project = tmp_path / "project"
        project.mkdir()
        try:
            first = _launch(["-p", SECURITY_PROMPT, "--output-format", "json"], env, project)
            assert first.returncode == 0, first.stderr + first.stdout
            assert f"started the proxy on http://127.0.0.1:{port}" in first.stderr
            assert json.loads(first.stdout)["result"] == "No injection: the query is parameterised."
            second = _launch(["-p", SECURITY_PROMPT, "--output-format", "json"], env, project)
            assert second.returncode == 0, second.stderr + second.stdout
            assert "started the proxy" not in second.stderr  # the first launcher's proxy serves
        finally:
            _stop_started_proxy(router_home)
        requests = fake.main_requests()
        assert len(requests) == 2
        assert requests[0].header("x-api-key") == "sk-test"  # the proxy's key, not a placeholder
    assert not (config_dir / "settings.json").exists()  # no settings file was touched
    conn = sqlite3.connect(router_home / "decisions.db")
    rows = conn.execute("SELECT source, rule, provider FROM decisions ORDER BY id").fetchall()
    assert ("hook", "security", "anthropic") in rows  # the hooks came on the command line
    assert rows.count(("proxy", "security", "anthropic")) == 2


class _NotTheProxy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"some other service")

    def log_message(self, *args: object) -> None:
        pass


def test_the_launcher_refuses_a_port_another_server_holds(tmp_path, router_home):
    claude_binary()
    server = HTTPServer(("127.0.0.1", 0), _NotTheProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        data = config_data()
        data["proxy"]["port"] = server.server_address[1]
        router_home.mkdir(parents=True, exist_ok=True)
        (router_home / "router-config.json").write_text(json.dumps(data))
        env = {
            **os.environ,
            "PATH": f"{NODE_DIR / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}",
        }
        done = _launch(["-p", "hi"], env, tmp_path)
        assert done.returncode == 1
        assert "not a hybrid-router proxy" in done.stderr
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("busy", [False, True])
def test_an_idle_proxy_stops_but_never_during_a_request(busy):
    stopped = threading.Event()
    release = threading.Event()

    async def app(scope, receive, send):  # noqa: ANN001 - a tiny ASGI app
        release.wait(5)

    idle = IdleExit(app, 0.3, stopped.set)
    if busy:
        import asyncio

        worker = threading.Thread(target=asyncio.run, args=(idle({"type": "http"}, None, None),))
        worker.start()
        time.sleep(0.1)
        assert not stopped.wait(1.0)  # a request in flight for longer than the idle limit
        release.set()
        worker.join()
    else:
        release.set()
    assert stopped.wait(2.0)


def test_the_32gb_profile_session_runs_code_locally_with_the_window_set(tmp_path, router_home):
    """`hybrid-router claude` with the 32gb profile: a code-generation turn (the CLI's real,
    ~20K-token request) runs on the local model with the tier's window on every request, and a
    security turn goes to Anthropic."""
    claude_binary()
    from fakes.fake_ollama import FakeModel, FakeOllama

    environ = {**os.environ, "HYBRID_ROUTER_HOME": str(router_home)}
    subprocess.run(
        [str(SCRIPT), "init", "--profile", "32gb"], env=environ, check=True, capture_output=True
    )
    config_file = router_home / "router-config.json"
    data = json.loads(config_file.read_text())
    port = free_port()
    data["proxy"] |= {"port": port, "probeOnStart": False}
    config_file.write_text(json.dumps(data))
    local_model = data["tiers"]["coder"]["model"]
    window = data["tiers"]["coder"]["contextWindow"]
    models = [FakeModel(local_model, context_length=262144, capabilities=["completion", "tools"])]
    with FakeOllama(models) as ollama, FakeAnthropic() as fake:
        ollama.script(local_model, "def parse(text): ...")
        fake.enqueue(text("The handler is safe."))
        env, _, _ = claude_env(
            "http://127.0.0.1:9",
            tmp_path,
            {
                "ANTHROPIC_BASE_URL": None,
                "OLLAMA_HOST": ollama.url,
                "HYBRID_ROUTER_ANTHROPIC_URL": fake.url,
                "PATH": f"{NODE_DIR / 'node_modules' / '.bin'}{os.pathsep}{VENV_BIN}"
                f"{os.pathsep}{os.environ['PATH']}",
            },
        )
        project = tmp_path / "project"
        project.mkdir()
        try:
            code = _launch(
                [
                    "-p",
                    "write a python function that parses ISO durations",
                    "--output-format",
                    "json",
                ],
                env,
                project,
            )
            assert code.returncode == 0, code.stderr + code.stdout
            assert json.loads(code.stdout)["result"] == "def parse(text): ..."
            review = _launch(["-p", SECURITY_PROMPT, "--output-format", "json"], env, project)
            assert review.returncode == 0, review.stderr + review.stdout
            assert json.loads(review.stdout)["result"] == "The handler is safe."
        finally:
            _stop_started_proxy(router_home)
        sent = ollama.requests_to("/api/chat")
        assert sent and all(q.body["options"]["num_ctx"] == window for q in sent)
        assert all(len(json.dumps(q.body)) / 3.5 < window for q in sent)  # each fits its window
        assert len(fake.main_requests()) == 1  # the security turn, and only it
    conn = sqlite3.connect(router_home / "decisions.db")
    rows = conn.execute(
        "SELECT rule, provider FROM decisions WHERE source = 'proxy' ORDER BY id"
    ).fetchall()
    assert ("code-generation", "ollama") in rows and ("security", "anthropic") in rows
