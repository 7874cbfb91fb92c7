"""Outbound webhooks: the delivery's JSON body POSTed with its HMAC-SHA256 signature.

Headers: X-Tradewire-Timestamp (unix seconds), X-Tradewire-Signature (`v1=<hex>` over
`<timestamp>.<body>`), X-Tradewire-Delivery (the same on every attempt, to dedupe on) and
X-Tradewire-Event. A 2xx answer is delivered; anything else, a timeout or a refused connection
is a failure, tried again later. Redirects are not followed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from tradewire.domain.notifications import DELIVERY_HEADER, EVENT_HEADER, signed_headers
from tradewire.services.notifications import Outgoing, SendFailed

USER_AGENT = "tradewire-webhooks/1"


class WebhookSender:
    def __init__(self, *, timeout: float = 10.0, allow_private: bool = False,
                 client: httpx.Client | None = None) -> None:
        self._allow_private = allow_private
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, target: str, message: Outgoing) -> None:
        if message.secret is None:
            raise SendFailed("the webhook signing secret is missing")
        if not self._allow_private:
            _refuse_internal(target)
        body = message.body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   DELIVERY_HEADER: message.delivery_id, EVENT_HEADER: str(message.kind),
                   **signed_headers(message.secret, body, message.sent_at)}
        try:
            response = self._client.post(target, content=body, headers=headers)
        except httpx.TimeoutException:
            raise SendFailed("the receiver did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SendFailed(f"could not reach the receiver ({type(exc).__name__})") from None
        if not 200 <= response.status_code < 300:
            raise SendFailed(f"the receiver answered HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"WebhookSender(allow_private={self._allow_private})"


def _refuse_internal(target: str) -> None:
    """Refuse a target that resolves to this host or a private network. (Checked before the
    request; a name that resolves differently a moment later is not caught here.)"""
    parts = urlsplit(target)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        raise SendFailed("the receiver's host name does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if (address.is_private or address.is_loopback or address.is_link_local
                or address.is_multicast or address.is_reserved or address.is_unspecified):
            raise SendFailed("the receiver's address is internal; not allowed on this server")
