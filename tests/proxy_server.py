"""The real proxy app under uvicorn on 127.0.0.1 in a background thread, for tests and benches."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from hybrid_router.cli.serve import dashboard_mount
from hybrid_router.config.loading import parse_config
from hybrid_router.config.profiles import load_profiles, render_config
from hybrid_router.core.home import load_environment
from hybrid_router.proxy.app import create_app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config_data(**changes: Any) -> dict[str, Any]:
    """The router config the proxy tests run on, top-level keys replaced (deep edits by the
    caller): the default with the `seed` profile's tiers, whose three local tiers have three
    different models (fast qwen2.5-coder:7b, coder deepseek-coder:33b, reasoning llama3:70b) and
    small windows, so a test can tell the tiers apart by model and push a request over a window.
    (The embedded default, the 16gb profile, runs one model in all three local tiers.)"""
    data = render_config(load_profiles()["seed"])
    data.update(changes)
    return data


class RunningProxy:
    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, port: int, app: Any
    ) -> None:
        self.server = server
        self.thread = thread
        self.port = port
        self.app = app
        self.url = f"http://127.0.0.1:{port}"

    @property
    def state(self) -> Any:
        """The app's ProxyState (config, log writer, OpenRouter tracker, probe reports...)."""
        return self.app.state.proxy

    def flush_log(self) -> None:
        """Wait until every decision row of the requests answered so far is written."""
        self.state.log_writer.flush()


@contextmanager
def running_proxy(
    environ: dict[str, str],
    config: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
    probe_on_start: bool = False,
) -> Iterator[RunningProxy]:
    """The proxy with `config` (router-config data; default: the embedded default) and `environ`
    (provider URL overrides, keys, HYBRID_ROUTER_HOME). The start-up probe is off unless asked."""
    data = config or config_data()
    data.setdefault("proxy", {})["probeOnStart"] = probe_on_start
    parsed = parse_config(data, "test-config.json")
    # Mounted as `hybrid-router proxy` mounts it: the dashboard beside the Messages API.
    mounted = dashboard_mount(load_environment(environ))
    app = create_app(environ=environ, host=host, config=parsed, mounted=mounted)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="proxy-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the proxy did not start")
        time.sleep(0.02)
    try:
        yield RunningProxy(server, thread, port, app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def write_config(home: Path, data: dict[str, Any]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "router-config.json"
    path.write_text(json.dumps(data, indent=2))
    return path
