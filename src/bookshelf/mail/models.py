"""The outbox: one row per message, written in the transaction of the change that causes it.

A message is ``pending`` until a worker claims it (``sending``, with a lease), then ``sent``, or
``pending`` again with a later ``next_attempt_at`` after a failure, or ``dead`` once its
attempts are spent. A ``sending`` row whose lease has expired (its worker died) is claimed
again: delivery is at least once. The body of a sent message is cleared, so links (and the
tokens in them) do not outlive their delivery in the database. A dead message keeps its body,
so that an operator can send it again once the cause is fixed (``bookshelf mail retry``), until
it is retried or deleted a while after it died (``retention``).
"""

from sqlalchemy import CheckConstraint, Column, Index, Integer, String, Table, Text, Uuid

from bookshelf.db.metadata import metadata
from bookshelf.db.types import UtcDateTime

STATUSES = ("pending", "sending", "sent", "dead")

mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_id", Uuid),
    Column("lease_expires_at", UtcDateTime),
    Column("sent_at", UtcDateTime),
    Column("last_error", String(500)),
    # When the last attempt failed for good (null unless dead): how long a body is kept.
    Column("dead_at", UtcDateTime),
    CheckConstraint("status IN ('pending', 'sending', 'sent', 'dead')", name="status_known"),
    Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)
