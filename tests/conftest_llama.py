"""Pytest plugin: the session-scoped `llama_server` fixture (real llama.cpp + SmolLM2 135M).

Load it from tests/conftest.py with `pytest_plugins = ["conftest_llama"]` (tests/ is on
sys.path), or from a test module the same way. Tests using it are skipped when the CPU lacks
AVX2 or the model wheel is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_server import LlamaServer, start_llama_server


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    server = start_llama_server()
    try:
        yield server
    finally:
        server.stop()
