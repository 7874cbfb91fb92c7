"""Who is signed in: the session cookie (the API's signed JWT), its CSRF token, and login.

The cookie is HttpOnly and SameSite=Lax, and Secure when the request came over https. Every
form carries a CSRF token derived from the session (a keyed hash of it), so it needs no
storage and changes with each login; the login form itself uses a random token held in a
short-lived cookie (double submit).
"""

from __future__ import annotations

import hmac
import secrets as stdlib_secrets
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from tradewire.bootstrap import Container
from tradewire.domain.accounts import Principal
from tradewire.services import accounts
from tradewire.services.dashboard import person_name

SESSION_COOKIE = "tw_session"
LOGIN_COOKIE = "tw_login"
FLASH_COOKIE = "tw_flash"


@dataclass(frozen=True)
class Person:
    principal: Principal
    username: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin


def csrf_for(c: Container, token: str) -> str:
    return c.secrets.hash_api_key("csrf:" + token)


def current(c: Container, request: Request) -> Person | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 4096:
        return None
    principal = accounts.principal_for_token(token, c.deps, c.secrets)
    if principal is None:
        return None
    name = person_name(principal, c.deps)
    return Person(principal, name, csrf_for(c, token)) if name is not None else None


def same(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def same_origin(request: Request) -> bool:
    """A browser names the page a form came from; it must be this site (when it says)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def is_https(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def start(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True,
                        samesite="lax", secure=is_https(request))
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def login_token(request: Request) -> tuple[str, bool]:
    """The login form's CSRF token, and whether it is new (then set it with `keep_login`)."""
    token = request.cookies.get(LOGIN_COOKIE, "")
    if len(token) == 43:
        return token, False
    return stdlib_secrets.token_urlsafe(32), True


def keep_login(response: Response, request: Request, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/ui/login", httponly=True,
                        samesite="lax", secure=is_https(request))


def flash(response: Response, request: Request, message: str) -> None:
    response.set_cookie(FLASH_COOKIE, quote(message[:300]), max_age=60, path="/ui", httponly=True,
                        samesite="lax", secure=is_https(request))


def read_flash(request: Request) -> str | None:
    message = request.cookies.get(FLASH_COOKIE)
    return unquote(message) if message else None


def clear_flash(response: Response) -> None:
    response.delete_cookie(FLASH_COOKIE, path="/ui")
