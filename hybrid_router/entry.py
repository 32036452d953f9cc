"""The `hybrid-router` console script.

Claude Code runs `hybrid-router hook EVENT` and `hybrid-router statusline` as fresh processes,
often; those go straight to their lean modules. Everything else goes to the click CLI.
"""

from __future__ import annotations

import sys


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "hook" and not args[1].startswith("-"):
        from .hooks.main import run_hook

        sys.exit(run_hook(args[1]))
    if args == ["statusline"]:
        from .hooks.statusline import run_statusline

        sys.exit(run_statusline())
    from .cli import main as cli_main

    cli_main()
