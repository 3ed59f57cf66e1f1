"""Changes to an account that touch who may use it: one's own password (checked, then hashed),
and an admin's change of an account's role or access.

They are here, not in ``users``, because each needs sign-in's parts: the password policy and
hasher (``auth.passwords``), the signed-in ``Principal`` and signing out (``auth.sessions``),
the role rules (``InsufficientRole``). ``auth`` builds on ``users`` (the accounts' table, schemas
and columns), never the reverse.
"""

from __future__ import annotations

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
from bookshelf.auth.schemas import ProfileUpdate
from bookshelf.auth.sessions import Principal, sign_out_everywhere
from bookshelf.db.database import Connection
from bookshelf.db.types import utc_now
from bookshelf.users.exceptions import CannotChangeOwnAccess, LastActiveAdmin, UserNotFound
from bookshelf.users.models import users
from bookshelf.users.schemas import Role, User, UserAdminUpdate
from bookshelf.users.service import USER_COLUMNS


async def update_user(
    connection: Connection, admin: Principal | None, user_id: UUID, changes: UserAdminUpdate
) -> User:
    """Change an account's role, active flag or verification, for an admin signed in through
    the API or the pages, or (``admin`` None) for the operator at the command line
    (``bookshelf users``), who is no account. Deactivation signs the user out everywhere (and
    every request re-checks the flag, so their access tokens stop at once).

    Either way at least one active admin remains: an admin may not take their own rights
    away, and the operator may not take them from the last active admin."""
    values = changes.model_dump(exclude_unset=True, exclude_none=True)
    takes_admin_away = values.get("is_active") is False or values.get("role", "admin") != "admin"
    if admin is not None and user_id == admin.id and takes_admin_away:
        raise CannotChangeOwnAccess()
    if takes_admin_away:
        await _confirm_an_active_admin_remains(connection, admin, user_id)
    statement = update(users).where(users.c.id == user_id).returning(*USER_COLUMNS)
    row = (await connection.execute(statement.values(**values, updated_at=utc_now()))).first()
    if row is None:
        raise UserNotFound(user_id)
    if values.get("is_active") is False:
        await sign_out_everywhere(connection, user_id)
    return User.model_validate(row, from_attributes=True)


async def _confirm_an_active_admin_remains(
    connection: Connection, admin: Principal | None, user_id: UUID
) -> None:
    """Before taking admin rights away from ``user_id``, check under lock that an active admin
    other than them remains: the acting admin, who must still be one, or for the operator
    anyone.

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
    if admin is not None and admin.id not in active_admins:
        raise InsufficientRole(Role.ADMIN.value)
    if user_id in active_admins and not active_admins - {user_id}:
        raise LastActiveAdmin()


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
