"""The dashboard: server-rendered pages (Jinja2), a little plain JavaScript, live updates as
server-sent events, and charts from a vendored charting library. No build step."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from tradewire.adapters.db.dashboard_views import SqlDashboardViews
from tradewire.bootstrap import Container
from tradewire.entrypoints.web import live, pages_auth, pages_setup, pages_trading, render
from tradewire.entrypoints.web.core import Web


def install(app: FastAPI) -> None:
    """Serve the dashboard under /ui (and send / there); none of it is in the API schema."""
    container: Container = app.state.container
    app.state.dashboard = Web(container, SqlDashboardViews(container.db), render.environment())
    app.mount("/ui/static", StaticFiles(directory=render.STATIC), name="ui-static")
    # The sign-in router ends with the catch-all for unknown /ui pages, so it comes last.
    for module in (pages_trading, pages_setup, live, pages_auth):
        app.include_router(module.router)
