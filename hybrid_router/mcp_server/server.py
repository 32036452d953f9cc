"""The MCP server: `delegate_to_local`, `route_stats` and `pull_model` over stdio.

Shared resources (config, decision log, HTTP client) are opened once, in the lifespan. Nothing is
ever printed to stdout: on stdio it is the protocol's wire. Diagnostics go to stderr.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx2 as httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from .. import __version__
from ..config.endpoints import provider_base_url
from ..config.loading import ConfigError, load_config
from ..config.schema import RouterConfig
from ..core import home
from ..core.outcomes import OUTCOME_ERROR, OUTCOME_OK, SOURCE_MCP
from ..log.database import connect
from ..log.queries import recent as recent_rows
from ..log.report import recent_text, stats_text
from ..log.rows import DecisionRow, decision_row, record
from ..log.stats import PeriodError, compute_stats, parse_since
from ..providers.chat import BackendError
from ..providers.ollama import pull_model as ollama_pull
from .delegate import DelegateDeps, DelegateRequest, DelegationError, delegate, footer

log = logging.getLogger("hybrid_router.mcp")

SERVER_NAME = "hybrid-router"
RECENT_DECISIONS = 5
INSTRUCTIONS = (
    "Hands self-contained subtasks to a free local model (delegate_to_local), reports routing "
    "savings (route_stats) and installs Ollama models (pull_model)."
)
DELEGATE_DESCRIPTION = (
    "Run a self-contained task on a free local model and return its answer. Use it for work "
    "that needs nothing from this conversation: write or refactor a function, draft tests or "
    "docs, summarize or explain files. Pass file paths in `files`: the server reads them, so "
    "their text never enters your context. Not for security, production-critical or web work, "
    "or anything needing this conversation: such tasks are declined."
)


class AppState:
    """What every tool shares for the server's lifetime: config, decision log, HTTP client.

    Each is opened on first use and kept: validating the config and building the TLS context
    take about 0.2 s, which would otherwise delay `tools/list` at every Claude Code start.
    """

    def __init__(self, config_file: Path | None, working_directory: Path) -> None:
        self.config_file = config_file
        self.working_directory = working_directory
        self.environ = home.load_environment()
        self.session_id = self.environ.get("CLAUDE_CODE_SESSION_ID") or None
        self._config: RouterConfig | None = None
        self._client: httpx.AsyncClient | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn_failed = False

    def config(self) -> RouterConfig:
        if self._config is None:
            try:
                self._config = load_config(self.config_file).config
            except ConfigError as exc:
                raise ToolError(f"the router config is invalid: {exc}") from None
        return self._config

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        return self._client

    def conn(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._conn_failed:
            try:
                self._conn = connect(home.database_path())
            except (OSError, sqlite3.Error) as exc:
                self._conn_failed = True
                log.warning("decision log unavailable, decisions will not be recorded: %s", exc)
        return self._conn

    def record(self, row: DecisionRow) -> None:
        """Log a row; a broken log must not cost the user the answer, so failures only warn."""
        conn = self.conn()
        if conn is None:
            return
        try:
            record(conn, row)
        except sqlite3.Error as exc:
            log.warning("could not write the decision log: %s", exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._conn is not None:
            self._conn.close()


def build_server(
    config_file: Path | None = None, working_directory: Path | None = None
) -> MCPServer:
    """The server, with tools bound to the state its lifespan owns."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        state = AppState(config_file, (working_directory or Path.cwd()).resolve())
        try:
            yield state
        finally:
            await state.close()

    server: MCPServer[AppState] = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=__version__, lifespan=lifespan
    )
    _register_tools(server)
    return server


def _state(ctx: Context[AppState, Any]) -> AppState:
    return ctx.request_context.lifespan_context


def _register_tools(server: MCPServer[AppState]) -> None:
    @server.tool(
        description=DELEGATE_DESCRIPTION,
        annotations=ToolAnnotations(
            title="Delegate to a local model", read_only_hint=True, open_world_hint=False
        ),
        structured_output=False,
    )
    async def delegate_to_local(
        task: Annotated[str, Field(min_length=1, description="The complete task, self-contained.")],
        ctx: Context[AppState, Any],
        files: Annotated[
            list[str] | None,
            Field(description="Paths of text files the task needs, read by the server."),
        ] = None,
        context: Annotated[
            str | None, Field(description="Any other context the task needs.")
        ] = None,
        model: Annotated[
            str | None,
            Field(description="A specific installed local model; default: the routing rules pick."),
        ] = None,
        max_tokens: Annotated[
            int | None, Field(ge=16, le=65536, description="Answer length limit.")
        ] = None,
        force: Annotated[
            bool, Field(description="Run even a task the rules keep for the premium model.")
        ] = False,
    ) -> str:
        state = _state(ctx)
        config = state.config()
        sent = [0]

        async def progress(_value: float, message: str) -> None:
            sent[0] += 1  # MCP progress must rise; the message carries the detail
            await ctx.report_progress(sent[0], None, message)

        deps = DelegateDeps(
            config=config,
            client=state.client(),
            environ=state.environ,
            working_directory=state.working_directory,
            record=state.record,
            session_id=state.session_id,
        )
        request = DelegateRequest(
            task=task,
            files=tuple(files or ()),
            context=context,
            model=model,
            max_tokens=max_tokens,
            force=force,
        )
        try:
            delegation = await delegate(request, deps, progress)
        except DelegationError as exc:
            raise ToolError(str(exc)) from None
        premium = config.tiers[config.premium_tier].model
        text = delegation.text.rstrip()
        notes = "".join(f"\n[note: {note}]" for note in delegation.notes)
        return f"{text}\n\n{footer(delegation, premium)}{notes}"

    @server.tool(
        description=(
            "Routing statistics: requests and cost per provider, cost without the router, "
            "savings, fallbacks, errors, and the most recent decisions."
        ),
        annotations=ToolAnnotations(
            title="Routing stats", read_only_hint=True, open_world_hint=False
        ),
    )
    async def route_stats(
        ctx: Context[AppState, Any],
        period: Annotated[
            str, Field(description="30m, 24h, 7d, today, all, or an ISO date.")
        ] = "7d",
        session: Annotated[
            str | None, Field(description="Only this Claude Code session's decisions.")
        ] = None,
    ) -> CallToolResult:
        conn = _state(ctx).conn()
        if conn is None:
            raise ToolError(f"the decision log at {home.database_path()} cannot be opened")
        try:
            since = parse_since(period)
        except PeriodError as exc:
            raise ToolError(str(exc)) from None
        summary = compute_stats(conn, since=since, session=session)
        recent = recent_rows(conn, RECENT_DECISIONS, since, session)
        text = stats_text(summary) + "\n\nRecent decisions:\n" + recent_text(recent)
        data = summary.to_dict()
        data["recent"] = recent
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=data
        )

    @server.tool(
        description=(
            "Install a model into the local Ollama (like `ollama pull`), with progress. Returns at "
            "once if it is already installed; an interrupted pull resumes when called again."
        ),
        annotations=ToolAnnotations(
            title="Pull an Ollama model",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    async def pull_model(
        name: Annotated[str, Field(min_length=1, description="Model name, e.g. qwen2.5-coder:7b.")],
        ctx: Context[AppState, Any],
    ) -> str:
        state = _state(ctx)
        config = state.config()
        provider_name = next((n for n, p in config.providers.items() if p.kind == "ollama"), None)
        if provider_name is None:
            raise ToolError("no Ollama provider is configured (router-config.json providers)")
        provider = config.providers[provider_name]
        base_url = provider_base_url(provider, state.environ)
        started = time.perf_counter()

        async def relay(completed: int, total: int | None, status: str) -> None:
            await ctx.report_progress(completed, total, status)

        outcome, error_class = OUTCOME_OK, None
        try:
            result = await ollama_pull(state.client(), provider, base_url, name, relay)
        except BackendError as exc:
            outcome, error_class = OUTCOME_ERROR, exc.kind
            raise ToolError(_pull_error(name, base_url, exc)) from None
        finally:
            state.record(
                decision_row(
                    None,
                    None,
                    source=SOURCE_MCP,
                    store_prompts=False,
                    outcome=outcome,
                    rule="pull-model",
                    provider=provider_name,
                    model=name,
                    error_class=error_class,
                    session_id=state.session_id,
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            )
        if result.already_present:
            return f"{name} is already installed in Ollama ({base_url})."
        size = f" ({result.total_bytes / 1e9:.2f} GB)" if result.total_bytes else ""
        return f"Pulled {name}{size} into Ollama ({base_url}). It is ready to use."


def _pull_error(name: str, base_url: str, error: BackendError) -> str:
    if error.kind == BackendError.UNREACHABLE:
        return (
            f"Ollama is not reachable at {base_url}. Start it (`ollama serve`), or set OLLAMA_HOST "
            "if it runs elsewhere, then call pull_model again."
        )
    if "file does not exist" in str(error) or error.status == 404:
        return (
            f"Ollama does not know a model named {name!r}: check the name (e.g. qwen2.5-coder:7b)."
        )
    return f"Ollama could not pull {name!r}: {error}"


def run_stdio(config_file: Path | None = None) -> None:
    logging.basicConfig(
        level=os.environ.get("HYBRID_ROUTER_LOG_LEVEL", "WARNING"), format="%(name)s: %(message)s"
    )
    build_server(config_file).run("stdio")
