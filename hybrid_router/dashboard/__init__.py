"""The web dashboard: one page of charts over the decision log, served by the proxy at
/dashboard and standalone by `hybrid-router dashboard`."""

from .app import create_dashboard_app, dashboard_routes
from .data import summary

__all__ = ["create_dashboard_app", "dashboard_routes", "summary"]
