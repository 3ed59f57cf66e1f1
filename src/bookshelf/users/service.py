"""Admin management of accounts."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bookshelf.auth.exceptions import InsufficientRole
from bookshelf.auth.models import users
from bookshelf.auth.schemas import Role, User, UserAdminUpdate
from bookshelf.auth.service import USER_COLUMNS, Principal, revoke_user_sessions
from bookshelf.pagination import CursorSchema, CursorText
from bookshelf.types import utc_now
from bookshelf.users.exceptions import CannotChangeOwnAccess, UserNotFound

# Emails are unique, so the email alone is a total order.
_CURSOR: CursorSchema[tuple[str]] = CursorSchema("email", CursorText)


async def list_users(
    connection: AsyncConnection, *, limit: int, cursor: str | None
) -> tuple[Sequence[User], str | None]:
    """Accounts by email, keyset-paginated (emails are unique, so the order is total)."""
    statement = select(*USER_COLUMNS).order_by(users.c.email).limit(limit + 1)
    if cursor is not None:
        (last_email,) = _CURSOR.decode(cursor)
        statement = statement.where(users.c.email > last_email)
    rows = (await connection.execute(statement)).all()
    items = [User.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = _CURSOR.encode((items[-1].email,)) if len(rows) > limit else None
    return items, next_cursor


async def update_user(
    connection: AsyncConnection, admin: Principal, user_id: UUID, changes: UserAdminUpdate
) -> User:
    """Change an account's role or active flag. Deactivation signs the user out everywhere
    (and every request re-checks the flag, so their access tokens stop at once)."""
    values = changes.model_dump(exclude_unset=True, exclude_none=True)
    takes_admin_away = values.get("is_active") is False or values.get("role", "admin") != "admin"
    if user_id == admin.id and takes_admin_away:
        raise CannotChangeOwnAccess()
    if takes_admin_away:
        await _confirm_still_an_active_admin(connection, admin)
    statement = update(users).where(users.c.id == user_id).returning(*USER_COLUMNS)
    row = (await connection.execute(statement.values(**values, updated_at=utc_now()))).first()
    if row is None:
        raise UserNotFound(user_id)
    if values.get("is_active") is False:
        await revoke_user_sessions(connection, user_id)
    return User.model_validate(row, from_attributes=True)


async def _confirm_still_an_active_admin(connection: AsyncConnection, admin: Principal) -> None:
    """Before taking admin rights away from someone, check under lock that the acting admin
    still has them. With self-demotion refused, this keeps at least one active admin, always.

    Two admins demoting (or deactivating) each other at the same moment must not both succeed,
    which would leave none. The check is made inside the writing transaction: on PostgreSQL the
    active admins' rows are locked (``FOR UPDATE``, in id order, so two such requests queue
    instead of deadlocking) and read after the lock, so the second request sees the first one's
    change and is refused; on SQLite the write transaction already holds the database's write
    lock (``BEGIN IMMEDIATE``), so the read is current.
    """
    active_admins = set(
        (
            await connection.execute(
                select(users.c.id)
                .where(users.c.role == Role.ADMIN.value, users.c.is_active.is_(True))
                .order_by(users.c.id)
                .with_for_update()
            )
        ).scalars()
    )
    if admin.id not in active_admins:
        raise InsufficientRole(Role.ADMIN.value)
