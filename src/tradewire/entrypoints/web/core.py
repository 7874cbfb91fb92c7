"""How a dashboard request runs: who asks, the page it gets, and every error as a page in words."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tradewire.adapters.db.dashboard_views import SqlDashboardViews
from tradewire.bootstrap import Container
from tradewire.domain.errors import (
    InvalidTransition,
    NotFound,
    Rejected,
    ServiceDisabled,
    TradewireError,
)
from tradewire.entrypoints.web import session
from tradewire.entrypoints.web.forms import BadForm, Form, read_form
from tradewire.services import risk
from tradewire.services.deps import Deps

log = logging.getLogger("tradewire.web")
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # The chart library sets style attributes itself, hence 'unsafe-inline' for styles only.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


@dataclass
class Web:
    container: Container
    views: SqlDashboardViews
    env: Environment

    def signals_on(self) -> bool:
        """The setting TRADEWIRE_SIGNALS_ENABLED (false: every new signal answers 503)."""
        return self.container.settings.signals_enabled

    def halted(self) -> bool:
        """The global kill switch (new entries refused on every account; exits still go)."""
        return risk.global_halt(self.container.deps)


def web_of(request: Request) -> Web:
    web: Web = request.app.state.dashboard
    return web


@dataclass
class Ui:
    """One dashboard request: the app, the request and the person signed in (if any)."""

    web: Web
    request: Request
    person: session.Person | None

    @property
    def deps(self) -> Deps:
        return self.web.container.deps

    @property
    def me(self) -> session.Person:
        assert self.person is not None  # page() and action() let no one else through
        return self.person

    def html(self, template: str, *, http_status: int = 200, **ctx: Any) -> HTMLResponse:
        whole = self.person is not None and not template.startswith("panels/")
        flash = session.read_flash(self.request) if whole else None
        body = self.web.env.get_template(template).render(
            person=self.person, csrf=self.person.csrf if self.person else "", flash=flash,
            signals_on=self.web.signals_on(), halted=whole and self.web.halted(),
            path=self.request.url.path, **ctx)
        response = HTMLResponse(body, status_code=http_status, headers=HEADERS)
        if flash is not None:
            session.clear_flash(response)
        return response

    def redirect(self, url: str, message: str | None = None) -> Response:
        response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
        if message:
            session.flash(response, self.request, message)
        return response

    def error(self, status: int, message: str, *, back: str | None = None) -> HTMLResponse:
        return self.html("error.html", http_status=status, title=_TITLES.get(status, "Refused"),
                         message=message, back=back or _back(self.request))


_TITLES = {400: "That did not work", 401: "Please sign in", 403: "Not allowed",
           404: "Not found", 409: "Refused", 413: "Too large", 415: "Wrong kind of request",
           500: "Something went wrong"}


def _back(request: Request) -> str:
    """Where "go back" leads: the page the form was on, if it is one of ours."""
    referer = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    for prefix in (f"http://{host}/ui", f"https://{host}/ui"):
        if referer.startswith(prefix):
            return referer[len(prefix) - 3:]
    return "/ui"


def status_of(exc: Exception) -> int:
    if isinstance(exc, BadForm):
        return exc.status
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Rejected | ServiceDisabled | InvalidTransition):
        return 409
    return 400  # any other refusal of the core: bad input (an invalid strategy, ...)


def _guarded(ui: Ui, fn: Callable[[], Response]) -> Response:
    try:
        return fn()
    except (BadForm, TradewireError) as exc:
        return ui.error(status_of(exc), exc.message)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("dashboard error %s on %s %s", ref, ui.request.method, ui.request.url.path)
        return ui.error(500, f"tradewire failed to do this; the details are in its log under "
                             f"reference {ref}.")


Handler = Callable[[Ui], Response]
Action = Callable[[Ui, Form], Response]


async def page(request: Request, fn: Handler) -> Response:
    """A page for a signed-in person; others are sent to the login page and back."""
    web = web_of(request)

    def run() -> Response:
        ui = Ui(web, request, session.current(web.container, request))
        if ui.person is None:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(here, safe='')}", status_code=303)
        return _guarded(ui, lambda: fn(ui))

    return await run_in_threadpool(run)


async def fragment(request: Request, fn: Handler) -> Response:
    """A piece of a page, fetched by the page itself when something changed."""
    web = web_of(request)

    def run() -> Response:
        ui = Ui(web, request, session.current(web.container, request))
        if ui.person is None:
            return HTMLResponse("<p>Your session ended: sign in again.</p>", 401, headers=HEADERS)
        return _guarded(ui, lambda: fn(ui))

    return await run_in_threadpool(run)


async def action(request: Request, fn: Action, *, confirm: str | None = None) -> Response:
    """A form post: signed in, same origin, with the session's CSRF token; where money moves
    (`confirm`), also confirmed (by the page's dialog, or by a second page without scripts)."""
    web = web_of(request)
    try:
        form = await read_form(request)
    except BadForm as exc:
        failed = exc

        def refuse() -> Response:
            ui = Ui(web, request, session.current(web.container, request))
            return ui.error(failed.status, failed.message)

        return await run_in_threadpool(refuse)

    def run() -> Response:
        ui = Ui(web, request, session.current(web.container, request))
        if ui.person is None:
            return ui.error(401, "Your session has ended. Sign in again, then repeat this.",
                            back="/ui/login")
        if not session.same_origin(request) or not session.same(ui.person.csrf,
                                                                 form.get("csrf")):
            return ui.error(403, "This form is out of date or did not come from this dashboard "
                                 "(its security token does not match). Reload the page and "
                                 "try again.")
        if confirm is not None and form.get("confirmed") != "yes":
            return ui.html("confirm.html", title="Please confirm", question=confirm,
                           action=request.url.path, back=_back(request),
                           fields=[(k, v) for k in form.names() if k not in ("csrf", "confirmed")
                                   for v in form.all(k)])
        return _guarded(ui, lambda: fn(ui, form))

    return await run_in_threadpool(run)
