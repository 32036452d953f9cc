"""The Anthropic-compatible proxy: `hybrid-router proxy`, for `ANTHROPIC_BASE_URL`."""
