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
from bookshelf.users.schemas import Role, User

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


# Past every character an address can hold: ``prefix + _LAST`` bounds the addresses that
# start with ``prefix`` in code-point order (SQLite's BINARY, PostgreSQL's C collations).
_LAST = "\U0010ffff"


async def list_users(
    connection: Connection,
    *,
    limit: int,
    cursor: str | None,
    email_prefix: str | None = None,
    role: Role | None = None,
) -> tuple[Sequence[User], str | None]:
    """Accounts by email, keyset-paginated (emails are unique, so the order is total); with
    ``email_prefix``, those whose address starts with it: a range of the email's unique
    index, however many accounts there are; with ``role``, those who have it."""
    selected = select(*USER_COLUMNS)
    if role is not None:
        selected = selected.where(users.c.role == role.value)
    if email_prefix:
        selected = selected.where(
            users.c.email >= email_prefix,
            users.c.email < email_prefix + _LAST,
            users.c.email.startswith(email_prefix, autoescape=True),
        )
    statement, values = _CURSOR.page(
        selected, (users.c.email,), descending=False, cursor=cursor, limit=limit
    )
    rows = (await connection.execute(statement, values)).all()
    items = [User.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return items, _CURSOR.next_cursor(rows, limit, lambda row: (row.email,))


async def find_user_by_email(connection: Connection, email: str) -> User | None:
    """The account at ``email`` (normalised, as stored), or None."""
    row = (await connection.execute(select(*USER_COLUMNS).where(users.c.email == email))).first()
    return None if row is None else User.model_validate(row, from_attributes=True)
