"""A real SMTP server (aiosmtpd on a free port of 127.0.0.1) that records what it receives,
and helpers to run the mail worker against it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.db.types import utc_now
from bookshelf.mail import service as mail_service
from bookshelf.mail.models import mail_outbox
from bookshelf.mail.transports import SmtpTransport
from bookshelf.mail.worker import MailWorker, WorkerSettings
from tests.servers import free_port

SENDER = "Bookshelf <bookshelf@test.example>"


@dataclass
class Recorder:
    """The handler: keeps every accepted message; can refuse recipients, stall DATA, or answer
    MAIL and RCPT slowly (``command_delay_seconds`` each)."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    stall_seconds: float = 0.0
    command_delay_seconds: float = 0.0
    data_started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        await asyncio.sleep(self.command_delay_seconds)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        await asyncio.sleep(self.command_delay_seconds)
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.data_started.set()
        if self.stall_seconds:
            await asyncio.sleep(self.stall_seconds)
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, recipient: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == recipient]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.recorder = Recorder()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[SmtpServer]:
    server = SmtpServer(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def worker_for(
    app: FastAPI,
    smtp_url: str,
    *,
    max_attempts: int = 5,
    retry_base_seconds: float = 0.05,
    lease_seconds: int = 30,
    timeout_seconds: float = 5,
    send_timeout_seconds: float = 20,
) -> MailWorker:
    return MailWorker(
        app.state.database,
        SmtpTransport(
            smtp_url,
            sender=SENDER,
            timeout_seconds=timeout_seconds,
            send_timeout_seconds=send_timeout_seconds,
        ),
        WorkerSettings(
            lease_seconds=lease_seconds,
            max_attempts=max_attempts,
            retry_base_seconds=retry_base_seconds,
            poll_interval_seconds=0.05,
        ),
    )


async def drain(worker: MailWorker) -> int:
    """Deliver every message that is due now; how many were handled."""
    handled = 0
    while await worker.deliver_one():
        handled += 1
    return handled


async def outbox(engine: AsyncEngine) -> list[Any]:
    """Every row of the outbox, oldest first (read apart from the app's pool)."""
    async with engine.connect() as connection:
        return list(
            await connection.execute(select(mail_outbox).order_by(mail_outbox.c.created_at))
        )


async def enqueue(engine: AsyncEngine, count: int) -> None:
    """``count`` messages, due now: to reader-<n>@example.org, with the body "Body <n>"."""
    async with engine.begin() as connection:
        for number in range(count):
            await mail_service.enqueue(
                connection,
                kind="test",
                recipient=f"reader-{number}@example.org",
                subject=f"Message {number}",
                body=f"Body {number}",
            )


async def make_due(engine: AsyncEngine) -> None:
    """Every message due now (a retry need not wait for its backoff)."""
    async with engine.begin() as connection:
        await connection.execute(update(mail_outbox).values(next_attempt_at=utc_now()))


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def token_in(message: EmailMessage, page: str) -> str:
    """The ``token=`` of the link to ``page`` in the plain-text body."""
    body = message.get_content()
    for word in body.split():
        parts = urlsplit(word)
        if parts.path.endswith("/" + page) and "token" in parse_qs(parts.query):
            return parse_qs(parts.query)["token"][0]
    raise AssertionError(f"no {page} link in:\n{body}")


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
