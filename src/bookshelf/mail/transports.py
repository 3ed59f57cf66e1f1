"""How a message leaves: SMTP (aiosmtplib), or the log when no SMTP server is configured, so a
newcomer can follow the links without a mail server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from bookshelf.config import Settings
from bookshelf.mail.exceptions import DeliveryFailed, InvalidSmtpUrl
from bookshelf.mail.service import OutgoingMail

logger = logging.getLogger("bookshelf.mail")


class Transport(Protocol):
    async def send(self, mail: OutgoingMail) -> None:
        """Deliver ``mail`` or raise ``DeliveryFailed``."""


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    # The outbox id: a message delivered twice (at-least-once) carries the same Message-ID,
    # so receiving systems can recognise the repeat.
    message["Message-ID"] = f"<{mail.id}@bookshelf.outbox>"
    message.set_content(mail.body)
    return message


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    require_starttls: bool


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://user:pass@host:587`` (STARTTLS when the server offers it, or always with
    ``?starttls=require``) or ``smtps://user:pass@host:465`` (TLS from the first byte)."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise InvalidSmtpUrl("expected smtp://[user:password@]host[:port] or smtps://…")
    implicit = parts.scheme == "smtps"
    starttls = parse_qs(parts.query).get("starttls", [""])[0].lower()
    return SmtpTarget(
        hostname=parts.hostname,
        port=parts.port or (465 if implicit else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        require_starttls=starttls in {"require", "required", "true", "1"},
    )


class SmtpTransport:
    def __init__(self, url: str, *, sender: str, timeout_seconds: float) -> None:
        self.target = parse_smtp_url(url)
        self.sender = sender
        self.timeout_seconds = timeout_seconds

    async def send(self, mail: OutgoingMail) -> None:
        target = self.target
        try:
            await aiosmtplib.send(
                build_message(mail, self.sender),
                hostname=target.hostname,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.implicit_tls,
                # None: upgrade when the server offers STARTTLS; True: refuse to go on without.
                start_tls=None
                if target.implicit_tls
                else (True if target.require_starttls else None),
                timeout=self.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise DeliveryFailed(f"recipient refused: {error}", permanent=True) from None
        except aiosmtplib.SMTPResponseException as error:
            # 5xx is the server's final word; 4xx (and anything else) is worth retrying.
            permanent = 500 <= error.code < 600 and error.code != 530
            raise DeliveryFailed(
                f"SMTP {error.code}: {error.message}", permanent=permanent
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from None


class LogTransport:
    """Writes each message to the log (development, and the embedded default)."""

    async def send(self, mail: OutgoingMail) -> None:
        logger.warning(
            "mail written to the log, not sent (BOOKSHELF_SMTP_URL is not set): to %s, "
            "subject %r\n%s",
            mail.recipient,
            mail.subject,
            mail.body,
        )


def build_transport(settings: Settings) -> Transport:
    if settings.smtp_url is None:
        return LogTransport()
    return SmtpTransport(
        settings.smtp_url.get_secret_value(),
        sender=settings.mail_from,
        timeout_seconds=settings.smtp_timeout_seconds,
    )
