"""MCP server start-up: spawn -> `tools/list` answered, ours against a minimal MCPServer.

Both servers are spawned the same way (a fresh process speaking stdio), sent `initialize`,
`notifications/initialized` and `tools/list`, and timed until the tools/list answer arrives.
Runs alternate between the two so machine noise hits both alike; the ratio of medians is printed.
Target: ratio <= 1.2.

Usage: .venv/bin/python bench/mcp_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import installed_script

MINIMAL_SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("minimal")


@server.tool()
def echo(text: str) -> str:
    \"\"\"Echo the text back.\"\"\"
    return text


server.run("stdio")
"""

MESSAGES = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
]


def time_to_tools_list(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert process.stdin and process.stdout
    process.stdin.write("".join(json.dumps(m) + "\n" for m in MESSAGES))
    process.stdin.flush()
    tools = -1
    for line in process.stdout:
        message = json.loads(line)
        if message.get("id") == 2:
            tools = len(message["result"]["tools"])
            break
    elapsed = time.perf_counter() - started
    process.stdin.close()
    process.wait(timeout=10)
    return elapsed * 1000, tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = installed_script()
    with tempfile.TemporaryDirectory() as scratch:
        minimal = Path(scratch) / "minimal_server.py"
        minimal.write_text(MINIMAL_SERVER)
        env = {**os.environ, "HYBRID_ROUTER_HOME": str(Path(scratch) / "home")}
        ours_cmd, minimal_cmd = [script, "mcp"], [sys.executable, str(minimal)]
        time_to_tools_list(ours_cmd, env)  # first run creates the decision log: not timed
        ours, baseline = [], []
        for _ in range(args.runs):
            elapsed, count = time_to_tools_list(minimal_cmd, env)
            assert count == 1
            baseline.append(elapsed)
            elapsed, count = time_to_tools_list(ours_cmd, env)
            assert count == 3, f"expected 3 tools, got {count}"
            ours.append(elapsed)
    ratio = statistics.median(ours) / statistics.median(baseline)
    print(f"{args.runs} runs each, spawn -> tools/list answered")
    print(
        f"minimal MCPServer  p50 {statistics.median(baseline):7.1f} ms  min {min(baseline):7.1f} ms"
    )
    print(f"hybrid-router mcp  p50 {statistics.median(ours):7.1f} ms  min {min(ours):7.1f} ms")
    print(f"ratio {ratio:.2f}x ({'meets' if ratio <= 1.2 else 'MISSES'} the 1.2x target)")


if __name__ == "__main__":
    main()
