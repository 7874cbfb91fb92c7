"""Login: a username and password for a JWT session token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tradewire.adapters.formats.errors import details_of
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.domain.errors import Rejected
from tradewire.entrypoints.api.deps import container, decode_json
from tradewire.entrypoints.api.errors import JSON, unauthorized
from tradewire.services import accounts

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": LoginRequest.model_json_schema(),
    "example": {"username": "admin", "password": "..."}}}}}


@router.post("/login", summary="Log in for a JWT", openapi_extra=_BODY)
async def login(request: Request) -> Response:
    body = await request.body()
    try:
        req = LoginRequest.model_validate(decode_json(body))
    except ValidationError as exc:
        raise BadRequest(details_of(exc)) from None
    c = container(request)
    try:
        token, expires_in = await run_in_threadpool(accounts.login, req.username, req.password,
                                                    c.deps, c.secrets)
    except Rejected:
        raise unauthorized("Invalid username or password") from None
    return JSON({"success": True, "token": token, "access_token": token, "token_type": "bearer",
                 "expires_in": expires_in}, 200)
