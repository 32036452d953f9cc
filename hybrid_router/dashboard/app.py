"""The dashboard's HTTP surface: the page, its static files and one JSON endpoint, all read-only.

`dashboard_routes(database_path)` is what the proxy mounts; `create_dashboard_app` is the same
routes standalone (`hybrid-router dashboard`). With a token, the page and the JSON need it as
`?token=`, `x-api-key` or `Authorization: Bearer` (the static files hold no data and are public).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Collection
from contextlib import closing
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.access import browser_refusal, token_offered
from ..log.database import connect
from ..log.stats import PeriodError
from .data import RuleHitCache, summary

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# Nothing but this origin: the page loads no CDN, font or image from anywhere else.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _open_read_only(database_path: str) -> sqlite3.Connection:
    """The log for reading; a log that does not exist yet reads as an empty one (not created)."""
    if str(database_path) != ":memory:" and not os.path.exists(database_path):
        conn = connect(":memory:")
    else:
        conn = connect(database_path)
    conn.execute("PRAGMA query_only = ON")
    return conn


def dashboard_routes(database_path: str, token: str | None = None) -> list[BaseRoute]:
    """`GET /dashboard`, `GET /dashboard/api/summary?since=PERIOD`, `/dashboard/static/...`."""
    database_path = str(database_path)
    cache = RuleHitCache()  # whole past days' rule counts, between the page's refreshes

    def page(request: Request) -> Response:
        if not token_offered(request.headers, token, request.query_params.get("token")):
            return JSONResponse({"error": "invalid or missing hybrid-router token"}, 401)
        return FileResponse(
            os.path.join(STATIC_DIR, "index.html"),
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "cache-control": "no-cache"},
        )

    def api_summary(request: Request) -> Response:
        # A plain function: Starlette runs it in its thread pool, off the proxy's event loop.
        if not token_offered(request.headers, token, request.query_params.get("token")):
            return JSONResponse({"error": "invalid or missing hybrid-router token"}, 401)
        since = request.query_params.get("since", "24h")
        try:
            with closing(_open_read_only(database_path)) as conn:
                data: dict[str, Any] = summary(conn, since, cache=cache)
        except PeriodError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except sqlite3.Error as exc:
            return JSONResponse({"error": f"cannot read the decision log: {exc}"}, 503)
        return JSONResponse(data, headers={"cache-control": "no-store"})

    def to_page(request: Request) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/dashboard{query}", 307)

    return [
        Route("/dashboard", page, methods=["GET", "HEAD"]),
        Route("/dashboard/", to_page, methods=["GET", "HEAD"]),
        Route("/dashboard/api/summary", api_summary, methods=["GET"]),
        Mount(
            "/dashboard/static",
            app=StaticFiles(directory=STATIC_DIR),
            name="dashboard-static",
        ),
    ]


def create_dashboard_app(
    database_path: str,
    token: str | None = None,
    allowed_origins: Collection[str] = (),
    allowed_hosts: Collection[str] = (),
) -> BrowserGuard:
    """The dashboard alone (what `hybrid-router dashboard` serves); `/` redirects to it.

    Like the proxy, it refuses what a web page of another site (or a rebound DNS name) sends
    (core/access.py): the log's numbers are nobody else's business."""

    def root(request: Request) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/dashboard{query}", 307)

    routes = [*dashboard_routes(database_path, token), Route("/", root, methods=["GET", "HEAD"])]
    return BrowserGuard(Starlette(routes=routes), token, allowed_origins, allowed_hosts)


class BrowserGuard:
    """An ASGI app in front of another that answers 403 to what `browser_refusal` refuses."""

    def __init__(
        self,
        app: Starlette,
        token: str | None,
        allowed_origins: Collection[str],
        allowed_hosts: Collection[str],
    ) -> None:
        self.app = app
        self.token = token
        self.allowed_origins = allowed_origins
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope["headers"]
            }
            refusal = browser_refusal(
                headers,
                token=self.token,
                allowed_origins=self.allowed_origins,
                allowed_hosts=self.allowed_hosts,
            )
            if refusal is not None:
                await JSONResponse({"error": refusal}, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
