"""E-mail over SMTP (smtplib): plain-text mail, STARTTLS or implicit TLS when configured, a
login when a user is set. Errors name the SMTP reply code, never the password."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import SecretStr

from tradewire.domain.notifications import DELIVERY_HEADER
from tradewire.services.notifications import Outgoing, SendFailed


class SmtpSender:
    def __init__(self, host: str, port: int = 587, *, sender: str = "tradewire@localhost",
                 user: str | None = None, password: SecretStr | str | None = None,
                 starttls: bool = True, use_ssl: bool = False, timeout: float = 10.0,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self._host, self._port, self._from = host, port, sender
        self._user = user
        self._password = password if isinstance(password, SecretStr) or password is None \
            else SecretStr(password)
        self._starttls, self._ssl, self._timeout = starttls, use_ssl, timeout
        self._tls = tls_context or ssl.create_default_context()

    def send(self, target: str, message: Outgoing) -> None:
        mail = EmailMessage()
        mail["From"] = self._from
        mail["To"] = target
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(message.sent_at.timestamp(), usegmt=True)
        mail["Message-ID"] = make_msgid(idstring=message.delivery_id.replace("-", ""),
                                        domain="tradewire")
        mail[DELIVERY_HEADER] = message.delivery_id
        mail.set_content(message.text)
        try:
            with self._connect() as smtp:
                if self._starttls and not self._ssl:
                    smtp.starttls(context=self._tls)
                if self._user:
                    password = self._password.get_secret_value() if self._password else ""
                    _login(smtp, self._user, password)
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            raise SendFailed(f"the mail server refused it (SMTP {exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused:
            raise SendFailed("the mail server refused the recipient") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise SendFailed(f"could not reach the mail server ({type(exc).__name__})") from None

    def _connect(self) -> smtplib.SMTP:
        if self._ssl:
            return smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout,
                                    context=self._tls)
        return smtplib.SMTP(self._host, self._port, timeout=self._timeout)

    def __repr__(self) -> str:
        return f"SmtpSender({self._host}:{self._port}, user={self._user!r}, password=<hidden>)"


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """One login with the strongest mechanism the server offers (smtplib's `login` tries each
    offered mechanism in turn after a refusal: more failed logins, and some servers hang)."""
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the mail server does not offer AUTH")
    offered = smtp.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in ("CRAM-MD5", "PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPException("no supported authentication mechanism offered")
    smtp.user, smtp.password = user, password
    smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))
