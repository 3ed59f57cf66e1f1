"""The delivery loop: claim one due message, send it, record the outcome; repeat.

Runs as ``bookshelf worker`` (its own process; SIGTERM finishes the message in hand and exits),
or inside ``bookshelf serve`` when ``BOOKSHELF_INPROCESS_WORKER`` is on (the SQLite default).
Any number of workers share one outbox: each claim takes a lease on one message (see
``service.claim_next``). Delivery is at least once: a worker that dies between sending and
recording leaves a lease that expires, and the message is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from bookshelf.config import Environment, Settings
from bookshelf.db.database import Database, unit_of_work
from bookshelf.mail import metrics, service
from bookshelf.mail.exceptions import DeliveryFailed
from bookshelf.mail.liveness import Heartbeat
from bookshelf.mail.transports import Transport, build_transport

logger = logging.getLogger("bookshelf.mail")


@dataclass(frozen=True)
class WorkerSettings:
    lease_seconds: int
    max_attempts: int
    retry_base_seconds: float
    poll_interval_seconds: float

    @property
    def stall_after_seconds(self) -> float:
        """How long the loop may go without a beat before it counts as hung (``liveness``)."""
        return self.lease_seconds + self.poll_interval_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerSettings:
        return cls(
            lease_seconds=settings.mail_lease_seconds,
            max_attempts=settings.mail_max_attempts,
            retry_base_seconds=settings.mail_retry_base_seconds,
            poll_interval_seconds=settings.mail_poll_interval_seconds,
        )


class MailWorker:
    def __init__(self, database: Database, transport: Transport, config: WorkerSettings) -> None:
        self.database = database
        self.transport = transport
        self.config = config
        self.heartbeat = Heartbeat(config.stall_after_seconds)

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> MailWorker:
        if settings.smtp_url is None and settings.environment is Environment.PRODUCTION:
            # Only with BOOKSHELF_MAIL_TO_LOG_UNSAFE: production refuses it otherwise.
            logger.warning(
                "BOOKSHELF_MAIL_TO_LOG_UNSAFE: mails are written to the log (tokens masked), "
                "not sent; nobody receives a link"
            )
        return cls(database, build_transport(settings), WorkerSettings.from_settings(settings))

    async def deliver_one(self) -> bool:
        """Claim and deliver one due message; False when none was due."""
        async with unit_of_work(self.database, write=True) as connection:
            mail = await service.claim_next(connection, lease_seconds=self.config.lease_seconds)
        if mail is None:
            return False
        try:
            await self.transport.send(mail)
        except DeliveryFailed as error:
            async with unit_of_work(self.database, write=True) as connection:
                outcome = await service.mark_failed(
                    connection,
                    mail,
                    error=str(error),
                    permanent=error.permanent,
                    max_attempts=self.config.max_attempts,
                    retry_base_seconds=self.config.retry_base_seconds,
                )
            if outcome == "lease-lost":
                self._lease_lost(mail, "its failure")
            elif outcome == "dead":
                metrics.DEAD.inc()
                logger.error(
                    "mail %s is dead after %d attempt(s): %s", mail.id, mail.attempts, error
                )
            else:
                metrics.RETRIED.inc()
                logger.warning(
                    "mail %s not delivered (attempt %d): %s", mail.id, mail.attempts, error
                )
            return True
        async with unit_of_work(self.database, write=True) as connection:
            recorded = await service.mark_sent(connection, mail)
        metrics.SENT.inc()  # this worker did deliver it, recorded or not
        if recorded:
            logger.info("mail %s delivered", mail.id)
        else:
            self._lease_lost(mail, "its delivery")
        return True

    def _lease_lost(self, mail: service.OutgoingMail, outcome: str) -> None:
        metrics.LEASE_LOST.inc()
        logger.warning(
            "mail %s: %s was not recorded: its lease had expired and another worker has "
            "claimed the message since (BOOKSHELF_MAIL_LEASE_SECONDS too short?)",
            mail.id,
            outcome,
        )

    async def refresh_metrics(self) -> None:
        async with unit_of_work(self.database, write=False) as connection:
            current = await service.stats(connection)
        metrics.UNSENT.set(current.unsent)
        metrics.DEAD_IN_OUTBOX.set(current.dead)
        metrics.OLDEST_UNSENT_AGE.set(current.oldest_unsent_age_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; the message in hand is always finished first."""
        logger.info("mail worker ready")
        while not stop.is_set():
            self.heartbeat.beat()
            try:
                # Shielded: a cancellation waits for the message in hand to be recorded.
                delivered = await asyncio.shield(self.deliver_one())
                if not delivered:
                    await self.refresh_metrics()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("mail worker: outbox unavailable; retrying", exc_info=True)
                delivered = False
            if not delivered:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.poll_interval_seconds):
                        await stop.wait()
        logger.info("mail worker stopped")


class InProcessWorker:
    """The worker as a task of a serving process (``BOOKSHELF_INPROCESS_WORKER``)."""

    def __init__(self, worker: MailWorker, *, grace_seconds: float) -> None:
        self.stop = asyncio.Event()
        self.grace_seconds = grace_seconds
        self.task = asyncio.create_task(worker.run(self.stop), name="mail-worker")

    async def close(self) -> None:
        """Finish the message in hand (within the grace period), then stop."""
        self.stop.set()
        try:
            async with asyncio.timeout(self.grace_seconds):
                await asyncio.shield(self.task)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
