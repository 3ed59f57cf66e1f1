"""Accounts: their columns as anyone who may see an account sees them, and the list of them.

Nothing here knows about sign-in: what changes an account's password, role or access needs
sign-in's parts (sessions, password hashing) and is ``auth.accounts``, which builds on this
module, as ``auth.service`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from bookshelf.db.database import Connection
from bookshelf.pagination import CursorSchema, CursorText
from bookshelf.users.models import users
from bookshelf.users.schemas import User

# What anyone who may see an account sees of it: every column but the password hash.
USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.display_name,
    users.c.role,
    users.c.is_active,
    users.c.email_verified,
    users.c.created_at,
    users.c.updated_at,
)

# Emails are unique, so the email alone is a total order.
_CURSOR: CursorSchema[tuple[str]] = CursorSchema("email", CursorText)


async def list_users(
    connection: Connection, *, limit: int, cursor: str | None
) -> tuple[Sequence[User], str | None]:
    """Accounts by email, keyset-paginated (emails are unique, so the order is total)."""
    statement, values = _CURSOR.page(
        select(*USER_COLUMNS), (users.c.email,), descending=False, cursor=cursor, limit=limit
    )
    rows = (await connection.execute(statement, values)).all()
    items = [User.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return items, _CURSOR.next_cursor(rows, limit, lambda row: (row.email,))
