"""Accounts: one's own profile, and admin management of everyone's.

Password checks and hashing are ``auth.passwords`` (handed in as a ``PasswordHasher``); signing a
user out is ``auth.sessions``. Nothing here depends on sign-in (``auth.service``), which builds
on this module instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select, update

from bookshelf.auth.exceptions import (
    InsufficientRole,
    InvalidAccessToken,
    WeakPassword,
    WrongCurrentPassword,
)
from bookshelf.auth.passwords import PasswordHasher, password_problems
from bookshelf.auth.sessions import Principal, sign_out_everywhere
from bookshelf.db.database import Connection
from bookshelf.db.types import utc_now
from bookshelf.pagination import CursorSchema, CursorText
from bookshelf.users.exceptions import CannotChangeOwnAccess, UserNotFound
from bookshelf.users.models import users
from bookshelf.users.schemas import ProfileUpdate, Role, User, UserAdminUpdate

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
    connection: Connection, *, limit: int, cursor: str | None, email_prefix: str | None = None
) -> tuple[Sequence[User], str | None]:
    """Accounts by email, keyset-paginated (emails are unique, so the order is total); with
    ``email_prefix``, those whose address starts with it: a range of the email's unique
    index, however many accounts there are."""
    selected = select(*USER_COLUMNS)
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


async def update_user(
    connection: Connection, admin: Principal, user_id: UUID, changes: UserAdminUpdate
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
        await sign_out_everywhere(connection, user_id)
    return User.model_validate(row, from_attributes=True)


async def _confirm_still_an_active_admin(connection: Connection, admin: Principal) -> None:
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


async def current_password_hash(connection: Connection, user_id: UUID) -> str:
    password_hash = await connection.scalar(
        select(users.c.password_hash).where(users.c.id == user_id)
    )
    if password_hash is None:  # deleted since its token was checked
        raise InvalidAccessToken("the access token names no current account")
    return str(password_hash)


@dataclass(frozen=True)
class PasswordChange:
    """A checked password change: the hash it replaces and the new one."""

    old_hash: str
    new_hash: str


async def check_profile_update(
    hasher: PasswordHasher,
    principal: Principal,
    changes: ProfileUpdate,
    current_hash: str,
    *,
    client: str | None = None,
) -> PasswordChange | None:
    """Check a new password's policy, then ``current_password`` whenever it was sent (whatever
    else changes: a wrong one is never ignored), then hash the new password — before any write,
    and with no connection held (slow hashes). The change to make, or None without a new
    password. ``client``: the caller's address bucket (its share of the hashing slots)."""
    if changes.password is not None:
        problems = password_problems(changes.password, email=principal.user.email)
        if problems:
            raise WeakPassword(problems)
    if changes.current_password is not None and not await hasher.verify(
        changes.current_password, current_hash, client=client
    ):
        raise WrongCurrentPassword()
    if changes.password is None:
        return None
    new_hash = await hasher.hash(changes.password, client=client)
    return PasswordChange(old_hash=current_hash, new_hash=new_hash)


async def update_profile(
    connection: Connection,
    principal: Principal,
    changes: ProfileUpdate,
    password_change: PasswordChange | None,
) -> User:
    """Change one's display name and/or password; a password change signs out other sessions
    and voids every link mailed for the account (``sign_out_everywhere``).

    The password is replaced only if it is still the one that was checked: a concurrent change
    in between makes this one fail as a wrong current password, never silently win.
    """
    values: dict[str, object] = {}
    if "display_name" in changes.model_fields_set:
        values["display_name"] = changes.display_name
    statement = update(users).where(users.c.id == principal.id)
    if password_change is not None:
        values["password_hash"] = password_change.new_hash
        statement = statement.where(users.c.password_hash == password_change.old_hash)
    if not values:
        return principal.user
    row = (
        await connection.execute(
            statement.values(**values, updated_at=utc_now()).returning(*USER_COLUMNS)
        )
    ).first()
    if row is None:
        raise WrongCurrentPassword()
    if password_change is not None:
        await sign_out_everywhere(connection, principal.id, keep=principal.session_id)
    return User.model_validate(row, from_attributes=True)
