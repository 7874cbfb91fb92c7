"""Telegram bot messages: POST {base_url}/bot{token}/sendMessage with the chat id and text.

The token sits in the URL path, so it is kept out of every log line (httpx logs the URL of
each request) and out of every error."""

from __future__ import annotations

import logging

import httpx
from pydantic import SecretStr

from tradewire.services.notifications import Outgoing, SendFailed

MAX_TEXT = 4096  # what the Bot API takes in one message


class _HideToken(logging.Filter):
    """Masks a token in the records of a logger (the whole message, arguments included)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "[REDACTED]"), ()
        return True


def _hide_in_logs(token: str) -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideToken) and f.token == token for f in logger.filters):
            logger.addFilter(_HideToken(token))


class TelegramSender:
    def __init__(self, token: SecretStr | str, *, base_url: str = "https://api.telegram.org",
                 timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._base = base_url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        _hide_in_logs(self._token.get_secret_value())

    def send(self, target: str, message: Outgoing) -> None:
        token = self._token.get_secret_value()
        url = f"{self._base}/bot{token}/sendMessage"
        payload = {"chat_id": target, "text": message.text[:MAX_TEXT],
                   "disable_web_page_preview": True}
        try:
            response = self._client.post(url, json=payload)
        except httpx.TimeoutException:
            raise SendFailed("Telegram did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SendFailed(f"could not reach Telegram ({type(exc).__name__})") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code == 200 and isinstance(answer, dict) and answer.get("ok") is True:
            return
        said = answer.get("description") if isinstance(answer, dict) else None
        said = str(said)[:200].replace(token, "[REDACTED]") if said else "no description"
        raise SendFailed(f"Telegram refused it (HTTP {response.status_code}: {said})")

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"TelegramSender({self._base}, token=<hidden>)"
