"""What every proxied request shares: config, routing table, HTTP clients, log writer, pins,
probe reports and the OpenRouter free-tier tracker."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from typing import Any

import httpx2 as httpx

from ..config.compile import routing_table
from ..config.endpoints import provider_api_key, provider_base_url
from ..config.schema import RouterConfig
from ..core import home
from ..core.intent import LiveIntent
from ..core.table import RoutingTable
from ..log.database import connect
from ..log.pins import Pin, read_pin
from ..log.writer import LogWriter
from ..providers import probe
from ..providers.errors import BackendError
from ..providers.link import Link
from ..providers.openrouter import FreeTierTracker
from .http1 import HttpClient
from .upstream import Opened

log = logging.getLogger("hybrid_router.proxy")


REPORTS_RECHECK_SECONDS = 2.0


def probe_warnings(reports: list[Any], config: RouterConfig) -> list[str]:
    """One line for each backend a tier uses that is unreachable, and each tier model that is
    missing or failed the tool-call probe: what makes local routes fall back, said at start-up
    rather than discovered in the log."""
    used = {(t.provider, t.model) for t in config.tiers.values()}
    lines: list[str] = []
    for report in reports:
        if report.reachable is False and any(p == report.provider for p, _ in used):
            lines.append(
                f"{report.provider} is unreachable at {report.base_url} ({report.error}): "
                "its routes fall back to the next link"
            )
            continue
        for entry in report.models:
            if (report.provider, entry.model) not in used:
                continue
            if entry.status == "missing":
                lines.append(
                    f"{report.provider}/{entry.model} is not installed: its tier falls back "
                    "(`hybrid-router setup --pull` or `ollama pull`)"
                )
            elif entry.tools is False:
                lines.append(
                    f"{report.provider}/{entry.model} did not call a tool in the probe: requests "
                    "that carry tools skip it"
                )
    return lines


class ProxyState:
    """What every request shares: config, routing table, HTTP client, log writer, pin reader."""

    def __init__(self, config: RouterConfig, environ: dict[str, str], token: str | None) -> None:
        self.config = config
        self.table: RoutingTable = routing_table(config)
        self.intent = LiveIntent(environ)  # the second routing signal, as the prompt hook has it
        if not any(
            provider.kind == "openrouter" and provider_api_key(provider, environ)
            for provider in config.providers.values()
        ):
            # No OpenRouter key: a request too large for the local windows goes to the premium
            # tier straight away, rather than naming a free cloud model it would skip.
            self.table = self.table.replace(free_cloud_on_size=False)
        self.environ = environ
        self.token = token
        database = os.path.join(home.home_path(environ), home.DATABASE_FILENAME)
        self.log_writer = LogWriter(database)
        self.pins = connect(database)  # the pin reads happen on the event loop thread
        # Upstream calls for requests go through the lean HTTP/1.1 client; probes, version
        # checks and the free-tier refresh are occasional and use httpx.
        self.upstream = HttpClient()
        self.client = httpx.AsyncClient(
            trust_env=False, limits=httpx.Limits(max_connections=32, max_keepalive_connections=4)
        )
        self.openrouter = FreeTierTracker.at_home(environ)
        self.reports: list[Any] = probe.load_reports(probe.cache_path(environ))
        self._reports_stamp = self._stamp()  # the cache file as last read
        self._reports_checked = time.monotonic()

    async def start_probe(self) -> None:
        """Probe the backends in the background (tool calls, windows); results take effect as
        they arrive, and until then the cached ones from the last probe or `doctor` apply."""
        try:
            reports = await probe.probe_all(self.config, self.environ, self.client)
        except Exception as exc:  # noqa: BLE001 - a failed probe only means less information
            log.warning("backend probe failed: %s", exc)
            return
        self.reports = reports
        probe.save_reports(probe.cache_path(self.environ), reports)
        self._reports_stamp = self._stamp()
        for line in probe_warnings(reports, self.config):
            print(f"hybrid-router: {line}", file=sys.stderr)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            found = os.stat(probe.cache_path(self.environ))
        except OSError:
            return None
        return (found.st_mtime_ns, found.st_size)

    def _current_reports(self) -> list[Any]:
        """The probe reports, read again when `doctor` (or another proxy) has written newer ones:
        a backend fixed after start-up stops being skipped without a restart. The file is
        looked at no more than once every few seconds."""
        now = time.monotonic()
        if now - self._reports_checked >= REPORTS_RECHECK_SECONDS:
            self._reports_checked = now
            stamp = self._stamp()
            if stamp != self._reports_stamp:
                self._reports_stamp = stamp
                self.reports = probe.load_reports(probe.cache_path(self.environ))
        return self.reports

    async def refresh_openrouter(self) -> None:
        now = time.time()
        for name, provider in self.config.providers.items():
            key = provider_api_key(provider, self.environ)
            if provider.kind == "openrouter" and key:
                await self.openrouter.refresh(
                    self.client, name, provider_base_url(provider, self.environ), key, now
                )

    def tool_capable(self, link: Link) -> bool | None:
        return probe.tool_capable(self._current_reports(), link.provider_name, link.model)

    def with_reported_window(self, link: Link) -> Link:
        """The smaller of the configured window and the one the backend reports (/api/show):
        a config that promises more than the model has would let Ollama truncate silently."""
        reported = probe.reported_window(self._current_reports(), link.provider_name, link.model)
        if reported is None or (link.window is not None and link.window <= reported):
            return link
        return dataclasses.replace(link, window=reported)

    def exhausted(self, link: Link) -> str | None:
        if link.provider.kind != "openrouter":
            return None
        return self.openrouter.exhausted(link.provider_name, link.model, time.time())

    def note_failure(self, link: Link, failure: BackendError) -> None:
        """An OpenRouter answer that failed (an error status, or an error object with HTTP 200)
        teaches the free-tier tracker, as a successful one does."""
        if link.provider.kind == "openrouter" and failure.status is not None:
            now = time.time()
            self.openrouter.count_request(link.provider_name, link.model, now)
            self.openrouter.record_response(
                link.provider_name,
                link.model,
                failure.status,
                failure.headers,
                failure.upstream_body,
                now,
            )

    def note_success(self, link: Link, opened: Opened) -> None:
        if link.provider.kind == "openrouter":
            now = time.time()
            self.openrouter.count_request(link.provider_name, link.model, now)
            self.openrouter.record_response(
                link.provider_name, link.model, 200, opened.headers, None, now
            )

    async def close(self) -> None:
        await self.upstream.aclose()
        await self.client.aclose()
        self.log_writer.close()
        self.pins.close()

    async def protocol_for(self, link: Link) -> str:
        """The API to speak to `link` (see the config's `protocol`)."""
        if link.is_anthropic:
            return "anthropic"
        if link.provider.protocol != "auto":
            return link.provider.protocol
        return "ollama" if link.provider.kind == "ollama" else "openai"

    def pinned(self, session_id: str | None) -> Pin | None:
        if not session_id:
            return None
        try:
            return read_pin(self.pins, session_id, self.config.hooks.pin_ttl_hours * 3600)
        except Exception as exc:  # noqa: BLE001 - a broken log must not stop routing
            log.warning("could not read the turn pin: %s", exc)
            return None
