"""claude-hybrid-router: send the Claude Code work that needs no frontier model to free models."""

__version__ = "0.2.0"
