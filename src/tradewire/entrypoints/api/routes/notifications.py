"""Notification subscriptions and their deliveries. Reading needs accounts:read; making or
removing a subscription needs a signed-in user (JWT): an API key cannot route a user's
trading events somewhere new. The webhook signing secret is in the answer that makes the
subscription, and nowhere else."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tradewire.adapters.formats.errors import detail
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.domain.accounts import Scope
from tradewire.domain.errors import Rejected
from tradewire.domain.notifications import (
    Delivery,
    DeliveryStatus,
    EventKind,
    InvalidSubscription,
    NotificationSubscription,
)
from tradewire.entrypoints.api import views
from tradewire.entrypoints.api.deps import authenticate, container, decode_json
from tradewire.entrypoints.api.errors import JSON, ApiError
from tradewire.entrypoints.api.views import PageQuery
from tradewire.services import notifications

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
SubscriptionId = Annotated[str, Path(max_length=64)]

_EXAMPLE = {"channel": "webhook", "target": "https://example.com/hooks/tradewire",
            "events": ["order_filled", "stop_hit", "daily_loss_hit"]}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["channel", "target", "events"], "properties": {
        "channel": {"type": "string", "enum": ["webhook", "email", "telegram"]},
        "target": {"type": "string", "description": "URL, e-mail address or Telegram chat id"},
        "events": {"type": "array", "items": {"type": "string",
                                               "enum": [k.value for k in EventKind]}},
        "accountIds": {"type": "array", "items": {"type": "string"},
                       "description": "Only these of your accounts (absent: all of them)"}},
        "additionalProperties": False},
    "example": _EXAMPLE}}}}


def subscription_view(s: NotificationSubscription) -> dict[str, Any]:
    return {"id": s.id, "channel": str(s.channel), "target": s.target,
            "events": sorted(str(e) for e in s.events),
            "accountIds": sorted(s.account_ids) if s.account_ids is not None else None,
            "createdAt": views.moment(s.created_at)}


def delivery_view(d: Delivery) -> dict[str, Any]:
    return {"id": d.id, "subscriptionId": d.subscription_id, "channel": str(d.channel),
            "event": str(d.kind), "eventId": d.event_id, "accountId": d.account_id,
            "status": str(d.status), "attempts": d.attempts,
            "nextAttemptAt": views.moment(d.next_at) if d.status is DeliveryStatus.PENDING else None,
            "lastError": d.last_error, "subject": d.subject, "text": d.text,
            "createdAt": views.moment(d.created_at), "deliveredAt": views.moment(d.delivered_at)}


@router.get("/subscriptions", summary="Your notification subscriptions")
def list_subscriptions(request: Request) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.ACCOUNTS_READ)
    subs = notifications.list_subscriptions(principal, c.deps)
    return JSON({"success": True, "subscriptions": [subscription_view(s) for s in subs]}, 200)


@router.post("/subscriptions", openapi_extra=_BODY, status_code=201,
             summary="Send some events of your accounts to a webhook, a mail address or a "
                     "Telegram chat")
async def subscribe(request: Request) -> Response:
    body = await request.body()
    c = container(request)

    def run() -> notifications.Created:
        principal = authenticate(c, request.headers, None, jwt_only=True)
        data = decode_json(body)
        if not isinstance(data, dict):
            raise BadRequest([detail("invalid_type", "Expected an object")])
        try:
            return notifications.subscribe(principal, data, c.deps)
        except InvalidSubscription as exc:
            raise BadRequest([detail("invalid_value", exc.message, [exc.path])]) from None
        except Rejected as exc:  # too many subscriptions, no key to seal the secret with
            raise ApiError(400, exc.message, exc.code) from None

    created = await run_in_threadpool(run)
    out: dict[str, Any] = {"success": True, "subscription": subscription_view(created.subscription)}
    if created.secret is not None:
        out["secret"] = created.secret  # shown this once: sign-checking key for the receiver
    return JSON(out, 201)


@router.delete("/subscriptions/{subscriptionId}", summary="Remove one of your subscriptions")
def unsubscribe(request: Request, subscriptionId: SubscriptionId) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, None, jwt_only=True)
    notifications.unsubscribe(principal, subscriptionId, c.deps)
    return JSON({"success": True, "deleted": subscriptionId}, 200)


@router.get("/deliveries", summary="Your notifications: sent, waiting to be tried again, failed")
def list_deliveries(request: Request, page: PageQuery,
                    status: DeliveryStatus | None = None) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.ACCOUNTS_READ)
    rows = notifications.list_deliveries(principal, c.deps, page, status)
    return JSON(views.paginated("deliveries", [delivery_view(d) for d in rows], page), 200)
