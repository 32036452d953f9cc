"""Claude Code hooks and the status line.

Claude Code runs each hook as a fresh process on every event, so everything under this package
is written for start-up cost: no click, pydantic, sqlite-utils, httpx2 — and not `json`, `re`,
`dataclasses`, `typing` or `pathlib` either, which on these machines would each cost a sizeable
part of the budget (bench/hook_latency.py measures it).
"""
