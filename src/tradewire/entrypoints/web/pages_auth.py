"""Signing in and out, the way in from `/`, and pages that do not exist."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from tradewire.domain.errors import Rejected
from tradewire.entrypoints.web import session
from tradewire.entrypoints.web.core import Ui, action, web_of
from tradewire.entrypoints.web.forms import BadForm, Form, read_form
from tradewire.services import accounts

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> Response:
    return RedirectResponse("/ui", status_code=307)


def _next(raw: str) -> str:
    """Only a path of the dashboard itself: never another site (an open redirect)."""
    ok = raw.startswith("/ui") and not raw.startswith("//") and "\\" not in raw
    return raw if ok and "\n" not in raw and "\r" not in raw else "/ui"


def _login_page(ui: Ui, *, status: int = 200, error: str | None = None,
                username: str = "") -> Response:
    token, new = session.login_token(ui.request)
    response = ui.html("login.html", http_status=status, title="Sign in", login_csrf=token,
                       error=error, username=username,
                       next=_next(ui.request.query_params.get("next", "/ui")))
    if new:
        session.keep_login(response, ui.request, token)
    return response


@router.get("/ui/login")
async def login_form(request: Request) -> Response:
    web = web_of(request)

    def run() -> Response:
        ui = Ui(web, request, session.current(web.container, request))
        if ui.person is not None:
            return RedirectResponse(_next(request.query_params.get("next", "/ui")), 303)
        return _login_page(Ui(web, request, None))

    return await run_in_threadpool(run)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    web = web_of(request)
    try:
        form: Form | None = await read_form(request)
        problem = None
    except BadForm as exc:
        form, problem = None, exc

    def run() -> Response:
        ui = Ui(web, request, None)
        if form is None:
            assert problem is not None
            return _login_page(ui, status=problem.status, error=problem.message)
        expected = request.cookies.get(session.LOGIN_COOKIE, "")
        if not session.same_origin(request) or not session.same(expected, form.get("csrf")):
            return _login_page(ui, status=403, error="The sign-in form was out of date; "
                                                     "it is fresh now, please try again.")
        username, password = form.get("username"), form.get("password", "")
        if not username or not password or len(username) > 100 or len(password) > 200:
            return _login_page(ui, status=400, error="Enter your username and password.",
                               username=username[:100])
        try:
            token, expires_in = accounts.login(username, password, web.container.deps,
                                               web.container.secrets)
        except Rejected:
            return _login_page(ui, status=401, error="Wrong username or password.",
                               username=username)
        response = RedirectResponse(_next(form.get("next", "/ui")), status_code=303)
        session.start(response, request, token, expires_in)
        return response

    return await run_in_threadpool(run)


def _logout(ui: Ui, form: Form) -> Response:
    response = ui.redirect("/ui/login")
    session.end(response)
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    return await action(request, _logout)


@router.api_route("/ui/{rest:path}", methods=["GET", "POST"])
async def missing(request: Request, rest: str) -> Response:
    web = web_of(request)
    if not rest and request.method == "GET":
        return RedirectResponse("/ui", status_code=307)

    def run() -> Response:
        ui = Ui(web, request, session.current(web.container, request))
        return ui.error(404, "There is no such page in the dashboard.", back="/ui")

    return await run_in_threadpool(run)
