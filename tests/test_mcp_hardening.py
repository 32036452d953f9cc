"""The MCP delegate's smaller defects (issue 13, point 10): a symlink loop or a 5,000-character
file name is a clear tool error with its row, and a declined delegation is not counted as a
request to Anthropic (nothing was called)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client
from test_mcp_tools import (  # noqa: F401 - fixtures
    CODER,
    GOOD_CODE,
    anyio_backend,
    client,
    ollama,
    project,
    rows,
    text_of,
)

from hybrid_router.log.database import connect
from hybrid_router.log.stats import compute_stats

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("seed_profile")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("loop.txt", "a symlink loop"),
        ("x" * 5000 + ".py", "cannot be read"),
        ("src/" + "y" * 300 + "/z.py", "cannot be read"),
    ],
)
async def test_an_unusable_file_name_is_a_clear_tool_error_with_a_row(
    ollama: object,  # noqa: F811 - the fixtures of test_mcp_tools
    project: Path,  # noqa: F811
    router_home: Path,
    client: Client,  # noqa: F811
    name: str,
    expected: str,
) -> None:
    os.symlink(project / "loop.txt", project / "loop.txt")
    result = await client.call_tool("delegate_to_local", {"task": "summarize", "files": [name]})
    assert result.is_error
    message = text_of(result)
    assert "cannot read the files: files[0] " in message and expected in message
    assert len(message) < 1000  # the name is cut short in the message
    (row,) = rows(router_home)
    assert (row["outcome"], row["error_class"]) == ("error", "bad-file")


async def test_a_declined_delegation_is_no_request_to_anthropic(
    ollama: object,  # noqa: F811
    router_home: Path,
    client: Client,  # noqa: F811
) -> None:
    ollama.script(CODER, GOOD_CODE)  # type: ignore[attr-defined]
    await client.call_tool("delegate_to_local", {"task": "write a function that adds numbers"})
    declined = await client.call_tool(
        "delegate_to_local", {"task": "review this login handler for sql injection"}
    )
    assert declined.is_error and "Declined" in text_of(declined)
    conn = connect(router_home / "decisions.db")
    try:
        stats = compute_stats(conn)
    finally:
        conn.close()
    assert stats.outcomes == {"ok": 1, "declined": 1}
    assert stats.requests == 1
    assert [p.provider for p in stats.providers] == ["ollama"]
