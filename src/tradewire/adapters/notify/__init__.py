"""Notification senders: signed webhooks (httpx), e-mail (smtplib), Telegram bot messages.

`NotificationSettings` is what they need from the settings (nested in Settings as
`notifications`, so TRADEWIRE_NOTIFICATIONS__SMTP_HOST and so on); `build_senders` makes one
sender per configured channel, keyed by channel name, for `services.notifications.dispatch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from tradewire.services.notifications import Sender


class NotificationSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # Webhooks: always on. Targets that resolve to loopback, private or link-local addresses
    # are refused unless allowed (a user could otherwise aim tradewire at its own network).
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    webhook_allow_private: bool = False
    # E-mail: on when smtp_host is set.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "tradewire@localhost"
    smtp_starttls: bool = True  # upgrade the connection with STARTTLS before logging in
    smtp_ssl: bool = False  # implicit TLS from the first byte (port 465)
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Telegram: on when a bot token is set. base_url: another address for the Bot API.
    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org"
    telegram_timeout_s: float = Field(default=10.0, gt=0, le=120)


def build_senders(settings: NotificationSettings) -> dict[str, Sender]:
    """One sender per configured channel: webhook always, email and telegram when set up."""
    from tradewire.adapters.notify.smtp import SmtpSender
    from tradewire.adapters.notify.telegram import TelegramSender
    from tradewire.adapters.notify.webhook import WebhookSender

    senders: dict[str, Sender] = {
        "webhook": WebhookSender(timeout=settings.webhook_timeout_s,
                                 allow_private=settings.webhook_allow_private)}
    if settings.smtp_host:
        senders["email"] = SmtpSender(
            settings.smtp_host, settings.smtp_port, sender=settings.smtp_from,
            user=settings.smtp_user, password=settings.smtp_password,
            starttls=settings.smtp_starttls, use_ssl=settings.smtp_ssl,
            timeout=settings.smtp_timeout_s)
    if settings.telegram_bot_token is not None:
        senders["telegram"] = TelegramSender(settings.telegram_bot_token,
                                             base_url=settings.telegram_base_url,
                                             timeout=settings.telegram_timeout_s)
    return senders
