"""Dead mail kept for a retry: ``mail_outbox.dead_at``, when a message died, from which its
retention is counted (its body is no longer cleared when it dies).

Messages already dead were emptied by the older release; they get the time of their last
attempt as the time they died, and stay unsendable (``bookshelf mail retry`` says so).
Downgrading empties the bodies of dead messages again, as the older release expects.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bookshelf.db.types import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (nullable, so no table rebuild on SQLite).
    op.add_column("mail_outbox", sa.Column("dead_at", UtcDateTime(), nullable=True))
    op.execute(sa.text("UPDATE mail_outbox SET dead_at = next_attempt_at WHERE status = 'dead'"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE mail_outbox SET body = NULL WHERE status = 'dead'"))
    # SQLite rebuilds the table to drop a column; nothing refers to the outbox, so that is safe.
    with op.batch_alter_table("mail_outbox") as batch:
        batch.drop_column("dead_at")
