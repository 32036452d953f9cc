"""claude-hybrid-router: send Claude Code work that does not need a frontier model to free models."""

__version__ = "0.2.0"
