"""The outbox as an operator sees it (``bookshelf mail``): the messages not delivered yet, and
sending a dead one again once the cause is fixed.

What is shown never includes a body: it holds a link, and the link a token.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select, update

from bookshelf.db.database import Connection
from bookshelf.db.types import utc_now
from bookshelf.mail.exceptions import MessageBodyGone, MessageNotDead, MessageNotFound
from bookshelf.mail.models import mail_outbox
from bookshelf.pagination import CursorId, CursorSchema, CursorTimestamp

UNDELIVERED = ("pending", "sending", "dead")


class OutboxMessage(BaseModel):
    """A message of the outbox, without its body."""

    id: uuid.UUID
    kind: str
    recipient: str
    subject: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    dead_at: datetime | None
    last_error: str | None


_COLUMNS = tuple(mail_outbox.c[name] for name in OutboxMessage.model_fields)
# Oldest first: the order they were written in, the id breaking ties.
_CURSOR: CursorSchema[tuple[datetime, uuid.UUID]] = CursorSchema(
    "created_at", CursorTimestamp, CursorId
)


async def list_undelivered(
    connection: Connection, *, limit: int, cursor: str | None, dead_only: bool
) -> tuple[Sequence[OutboxMessage], str | None]:
    """The messages not delivered yet (or only the dead ones), oldest first, keyset-paginated."""
    statuses = ("dead",) if dead_only else UNDELIVERED
    selected = select(*_COLUMNS).where(mail_outbox.c.status.in_(statuses))
    statement, values = _CURSOR.page(
        selected,
        (mail_outbox.c.created_at, mail_outbox.c.id),
        descending=False,
        cursor=cursor,
        limit=limit,
    )
    rows = (await connection.execute(statement, values)).all()
    items = [OutboxMessage.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return items, _CURSOR.next_cursor(rows, limit, lambda row: (row.created_at, row.id))


def _message_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise MessageNotFound(text) from None


async def retry_dead(connection: Connection, message_id: str) -> OutboxMessage:
    """Make a dead message pending again, due now, with its attempts counted anew: the worker
    sends it as if it had just been written. Refused for an unknown id, a message that is not
    dead, and one that died before dead messages kept their body."""
    found = _message_id(message_id)
    row = (
        await connection.execute(
            update(mail_outbox)
            .where(
                mail_outbox.c.id == found,
                mail_outbox.c.status == "dead",
                mail_outbox.c.body.is_not(None),
            )
            .values(status="pending", attempts=0, next_attempt_at=utc_now(), dead_at=None)
            .returning(*_COLUMNS)
        )
    ).first()
    if row is not None:
        return OutboxMessage.model_validate(row, from_attributes=True)
    status = await connection.scalar(select(mail_outbox.c.status).where(mail_outbox.c.id == found))
    if status is None:
        raise MessageNotFound(message_id)
    if status != "dead":
        raise MessageNotDead(str(found), status)
    raise MessageBodyGone(str(found))
