"""The settings of the mail that lets accounts recover themselves (see docs/operating.md,
"Mail"): where it is sent from and through, and how the outbox worker delivers it. A part of
``config.Settings``, which reads them from the environment like every other setting."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from bookshelf.addresses import parse_smtp_url


class MailSettings(BaseSettings):
    # Where the links in mails point (the site that shows the verify and reset pages).
    public_url: str = "http://127.0.0.1:8000"
    # smtp://user:pass@host:587 (STARTTLS when offered; ?starttls=require insists) or
    # smtps://… (implicit TLS). Unset: mails are written to the log instead (development).
    # Secret: it carries the relay's password.
    smtp_url: SecretStr | None = None
    # Production without an SMTP URL refuses to start unless this says the log is meant: the
    # log transport then masks the links' tokens (only development shows them).
    mail_to_log_unsafe: bool = False
    mail_from: str = "Bookshelf <bookshelf@localhost>"
    # Each SMTP command (aiosmtplib's timeout) ...
    smtp_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    # ... and the whole of one send (connect, TLS, login, every command, the data): below the
    # lease, so no second worker can claim a message while its send still runs.
    smtp_send_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # The mail worker inside `bookshelf serve`. None: on for SQLite, off for PostgreSQL (run
    # `bookshelf worker` there).
    inprocess_worker: bool | None = None
    mail_max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    # Retry n waits base x 2^(n-1) seconds (capped at an hour).
    mail_retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # A claimed message whose worker died is claimed again after this (at-least-once).
    mail_lease_seconds: Annotated[int, Field(ge=5, le=3600)] = 120
    mail_poll_interval_seconds: Annotated[float, Field(gt=0, le=300)] = 2.0

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _empty_smtp_url_is_none(cls, value: object) -> object:
        # compose passes ${BOOKSHELF_SMTP_URL:-} through as "": no server, mails to the log.
        if value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
            return None
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_smtp_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_mail_transport(self) -> Self:
        if self.mail_to_log_unsafe and self.smtp_url is not None:
            raise ValueError(
                "BOOKSHELF_MAIL_TO_LOG_UNSAFE and BOOKSHELF_SMTP_URL exclude each other: unset one"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Self:
        # A lease that can expire while its worker is still sending would let a second worker
        # send the same message meanwhile.
        if self.mail_lease_seconds <= self.smtp_send_timeout_seconds:
            raise ValueError(
                "BOOKSHELF_MAIL_LEASE_SECONDS must be longer than "
                "BOOKSHELF_SMTP_SEND_TIMEOUT_SECONDS (a send must end before its lease)"
            )
        return self
