"""The outbox's operations: enqueue inside the caller's transaction; claim, mark sent and mark
failed for the worker. No delivery happens here, and never from a request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update

from bookshelf.db.database import Connection
from bookshelf.db.types import utc_now
from bookshelf.mail.models import mail_outbox

# Retries wait base x 2^(n-1), but never longer than this.
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class OutgoingMail:
    id: uuid.UUID
    recipient: str
    subject: str
    body: str
    attempts: int
    # This claim's: the outcome is recorded only while the row still holds it.
    lease_id: uuid.UUID


async def enqueue(
    connection: Connection, *, kind: str, recipient: str, subject: str, body: str
) -> uuid.UUID:
    """Write a message in the caller's transaction: it is delivered if, and only if, that
    transaction commits."""
    now = utc_now()
    message_id = uuid.uuid4()
    await connection.execute(
        insert(mail_outbox).values(
            id=message_id,
            kind=kind,
            recipient=recipient,
            subject=subject,
            body=body,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )
    return message_id


async def claim_next(connection: Connection, *, lease_seconds: int) -> OutgoingMail | None:
    """Claim the oldest due message (pending and due, or sending with an expired lease).

    One statement: on PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP LOCKED``,
    so concurrent workers each get a different message and never wait on each other; SQLite
    ignores the clause, and its write transaction (``BEGIN IMMEDIATE``) makes the claimant the
    only one. Commit at once, so the lease is visible to every other worker.
    """
    now = utc_now()
    lease_id = uuid.uuid4()
    due = (
        select(mail_outbox.c.id)
        .where(
            or_(
                and_(mail_outbox.c.status == "pending", mail_outbox.c.next_attempt_at <= now),
                and_(mail_outbox.c.status == "sending", mail_outbox.c.lease_expires_at <= now),
            )
        )
        .order_by(mail_outbox.c.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = (
        await connection.execute(
            update(mail_outbox)
            .where(mail_outbox.c.id.in_(due.scalar_subquery()))
            .values(
                status="sending",
                lease_id=lease_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=mail_outbox.c.attempts + 1,
            )
            .returning(
                mail_outbox.c.id,
                mail_outbox.c.recipient,
                mail_outbox.c.subject,
                mail_outbox.c.body,
                mail_outbox.c.attempts,
            )
        )
    ).first()
    if row is None:
        return None
    return OutgoingMail(row.id, row.recipient, row.subject, row.body or "", row.attempts, lease_id)


def _still_claimed_by(mail: OutgoingMail) -> ColumnElement[bool]:
    """The row is still this claim's. Once the lease expired, another worker may have claimed
    the message (a new lease id): that worker alone records the outcome."""
    return and_(
        mail_outbox.c.id == mail.id,
        mail_outbox.c.status == "sending",
        mail_outbox.c.lease_id == mail.lease_id,
    )


async def mark_sent(connection: Connection, mail: OutgoingMail) -> bool:
    """Record the delivery and forget the body (it holds a token). False, and nothing
    changed, when the claim was lost (see ``_still_claimed_by``)."""
    result = await connection.execute(
        update(mail_outbox)
        .where(_still_claimed_by(mail))
        .values(status="sent", sent_at=utc_now(), body=None, lease_id=None, lease_expires_at=None)
    )
    return bool(result.rowcount)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """How long to wait before attempt ``attempts + 1``: base x 2^(attempts-1), capped."""
    seconds = base_seconds * 2 ** max(0, attempts - 1)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


async def mark_failed(
    connection: Connection,
    mail: OutgoingMail,
    *,
    error: str,
    permanent: bool,
    max_attempts: int,
    retry_base_seconds: float,
) -> Literal["retry", "dead", "lease-lost"]:
    """After a failed attempt: ``"retry"`` (pending again, later) or ``"dead"``; or
    ``"lease-lost"``, and nothing changed, when the claim was lost (see ``_still_claimed_by``)."""
    now = utc_now()
    dead = permanent or mail.attempts >= max_attempts
    values: dict[str, object] = {
        "last_error": error[:500],
        "lease_id": None,
        "lease_expires_at": None,
    }
    if dead:
        # The body stays for a retry (``dead.retry``) until retention deletes the message.
        values.update(status="dead", dead_at=now)
    else:
        values.update(
            status="pending", next_attempt_at=now + backoff(mail.attempts, retry_base_seconds)
        )
    result = await connection.execute(
        update(mail_outbox).where(_still_claimed_by(mail)).values(**values)
    )
    if not result.rowcount:
        return "lease-lost"
    return "dead" if dead else "retry"


@dataclass(frozen=True)
class OutboxStats:
    unsent: int
    dead: int
    oldest_unsent_age_seconds: float


async def stats(connection: Connection, now: datetime | None = None) -> OutboxStats:
    now = now or utc_now()
    unsent_filter = mail_outbox.c.status.in_(("pending", "sending"))
    unsent, oldest = (
        await connection.execute(
            select(func.count(), func.min(mail_outbox.c.created_at)).where(unsent_filter)
        )
    ).one()
    dead = await connection.scalar(
        select(func.count()).select_from(mail_outbox).where(mail_outbox.c.status == "dead")
    )
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    return OutboxStats(int(unsent), int(dead or 0), max(0.0, age))
