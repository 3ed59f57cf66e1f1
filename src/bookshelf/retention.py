"""Deleting what has expired: sign-in sessions (with their refresh tokens), refresh tokens,
idempotency records, the tokens of mailed links, the addresses accounts signed in from (a while
after the last sign-in from there: ``auth.service.SIGN_IN_ADDRESS_KEPT``), delivered mail
(after a week) and dead mail (a week after it died, with the body kept for a retry). Without it
these tables grow with every sign-in, keyed POST and mail, forever.

Run by every instance periodically (``BOOKSHELF_PURGE_INTERVAL_SECONDS``, started in the app's
lifespan) and on demand by ``bookshelf purge``. Deleting is idempotent, so instances purging at
the same time only repeat each other's work. Rows go in batches, each its own short
transaction, so a large backlog never holds locks for long.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, delete, select

from bookshelf.auth.models import (
    account_tokens,
    auth_sessions,
    refresh_tokens,
    sign_in_addresses,
)
from bookshelf.db.database import Database, unit_of_work
from bookshelf.db.types import utc_now
from bookshelf.idempotency.models import idempotency_records
from bookshelf.mail.models import mail_outbox

logger = logging.getLogger("bookshelf.retention")

BATCH_SIZE = 1000
SENT_MAIL_KEPT = timedelta(days=7)
# Long enough for an operator to fix the cause and send it again (``bookshelf mail retry``);
# the links in its body are past their lifetime by then (a day at most, by default) anyway.
DEAD_MAIL_KEPT = timedelta(days=7)
# Sessions first: deleting one deletes its refresh tokens too (ON DELETE CASCADE).
EXPIRING_TABLES: tuple[Table, ...] = (
    auth_sessions,
    refresh_tokens,
    idempotency_records,
    account_tokens,  # mailed links (verification, reset, email change) past their lifetime
    sign_in_addresses,  # addresses an account has not signed in from for a long time
)


@dataclass(frozen=True)
class PurgeReport:
    deleted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


async def _delete_batch(
    database: Database,
    table: Table,
    now: object,
    batch_size: int,
    *,
    column: str = "expires_at",
    only: tuple[ColumnElement[bool], ...] = (),
) -> int:
    """Delete about ``batch_size`` of the oldest expired rows (more only on equal expiries)."""
    expires_at = table.c[column]
    async with unit_of_work(database, write=True) as connection:
        boundary = await connection.scalar(
            select(expires_at)
            .where(expires_at <= now, *only)
            .order_by(expires_at)
            .offset(batch_size - 1)
            .limit(1)
        )
        deleted = await connection.execute(
            delete(table).where(expires_at <= (boundary if boundary is not None else now), *only)
        )
        return int(deleted.rowcount)


async def purge_expired(database: Database, *, batch_size: int = BATCH_SIZE) -> PurgeReport:
    """Delete every row that had expired when the purge began."""
    now = utc_now()
    deleted = {}
    for table in EXPIRING_TABLES:
        deleted[table.name] = await _delete_all(database, table, now, batch_size)
    # Delivered mail (its body, with the link, is already gone) is kept a while for support
    # questions, then deleted; dead mail (with its body) a while for a retry.
    deleted[mail_outbox.name] = await _delete_all(
        database,
        mail_outbox,
        now - SENT_MAIL_KEPT,
        batch_size,
        column="sent_at",
        only=(mail_outbox.c.status == "sent",),
    ) + await _delete_all(
        database,
        mail_outbox,
        now - DEAD_MAIL_KEPT,
        batch_size,
        column="dead_at",
        only=(mail_outbox.c.status == "dead",),
    )
    return PurgeReport(deleted)


async def _delete_all(
    database: Database,
    table: Table,
    now: datetime,
    batch_size: int,
    *,
    column: str = "expires_at",
    only: tuple[ColumnElement[bool], ...] = (),
) -> int:
    total = 0
    while True:
        count = await _delete_batch(database, table, now, batch_size, column=column, only=only)
        total += count
        if count < batch_size:
            return total


async def purge_periodically(database: Database, interval_seconds: float) -> None:
    """Purge every ``interval_seconds`` until cancelled; a failed purge is logged and retried
    at the next interval. The first one comes after a random part of the interval, so
    instances started together do not all purge at the same moment."""
    await asyncio.sleep(random.uniform(0, interval_seconds))  # noqa: S311 - not security
    while True:
        try:
            report = await purge_expired(database)
        except Exception:
            logger.warning("purge of expired rows failed; retrying later", exc_info=True)
        else:
            if report.total:
                summary = ", ".join(f"{name}={count}" for name, count in report.deleted.items())
                logger.info("purged expired rows", extra={"purged": summary})
        await asyncio.sleep(interval_seconds)
