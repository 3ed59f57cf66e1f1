"""How a message leaves: SMTP (aiosmtplib), or the log when no SMTP server is configured, so a
newcomer can follow the links without a mail server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib

from bookshelf.addresses import parse_smtp_url
from bookshelf.config import Environment, Settings
from bookshelf.mail.exceptions import DeliveryFailed
from bookshelf.mail.service import OutgoingMail
from bookshelf.ops.logging import MAIL_LOG, redact_text

# The one logger whose lines may show a link's token, and only in development.
mail_log = logging.getLogger(MAIL_LOG)


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


class SmtpTransport:
    """One connection per message. Each command is bounded by ``timeout_seconds``, and the
    whole send by ``send_timeout_seconds``: a server that answers every command just in time
    cannot stretch a send past the worker's lease."""

    def __init__(
        self, url: str, *, sender: str, timeout_seconds: float, send_timeout_seconds: float
    ) -> None:
        self.target = parse_smtp_url(url)
        self.sender = sender
        self.timeout_seconds = timeout_seconds
        self.send_timeout_seconds = send_timeout_seconds

    def _client(self) -> aiosmtplib.SMTP:
        target = self.target
        return aiosmtplib.SMTP(
            hostname=target.hostname,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.implicit_tls,
            # None: upgrade when the server offers STARTTLS; True: refuse to go on without.
            start_tls=None if target.implicit_tls else (True if target.require_starttls else None),
            timeout=self.timeout_seconds,
        )

    async def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, self.sender)
        # Not aiosmtplib.send: leaving its context after a cancellation waits for QUIT's answer,
        # one more command timeout past the budget.
        client = self._client()
        deadline = asyncio.get_running_loop().time() + self.send_timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                await client.connect()
                await client.send_message(message)
            # Accepted: a polite QUIT if the budget allows; whatever it answers, the mail is sent.
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await client.quit()
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise DeliveryFailed(f"recipient refused: {error}", permanent=True) from None
        except aiosmtplib.SMTPResponseException as error:
            # 5xx is the server's final word; 4xx (and anything else) is worth retrying.
            permanent = 500 <= error.code < 600 and error.code != 530
            raise DeliveryFailed(
                f"SMTP {error.code}: {error.message}", permanent=permanent
            ) from None
        except aiosmtplib.SMTPException as error:  # one command's own timeout among them
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from None
        except TimeoutError:  # the whole send's budget (caught before OSError, its base class)
            raise DeliveryFailed(
                f"the send took longer than BOOKSHELF_SMTP_SEND_TIMEOUT_SECONDS "
                f"({self.send_timeout_seconds:g} s)"
            ) from None
        except OSError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from None
        finally:
            client.close()


class LogTransport:
    """Writes each message to the log instead of sending it. Development shows the links as
    they are (a newcomer follows them without a mail server); elsewhere their tokens are
    masked, here and again by the log's redaction."""

    def __init__(self, *, show_links: bool) -> None:
        self.show_links = show_links

    async def send(self, mail: OutgoingMail) -> None:
        body = mail.body if self.show_links else redact_text(mail.body)
        mail_log.warning(
            "mail written to the log, not sent (BOOKSHELF_SMTP_URL is not set): to %s, "
            "subject %r\n%s",
            mail.recipient,
            mail.subject,
            body,
        )


def build_transport(settings: Settings) -> Transport:
    if settings.smtp_url is None:
        return LogTransport(show_links=settings.environment is Environment.DEVELOPMENT)
    return SmtpTransport(
        settings.smtp_url.get_secret_value(),
        sender=settings.mail_from,
        timeout_seconds=settings.smtp_timeout_seconds,
        send_timeout_seconds=settings.smtp_send_timeout_seconds,
    )
