"""Who a request is signed in as, and signing sessions out.

Kept apart from ``auth.service`` (credentials and tokens): account changes (``auth.accounts``),
recovery and the other features' services use the signed-in ``Principal`` and signing out
without loading sign-in itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import update

from bookshelf.auth import account_tokens
from bookshelf.auth.models import auth_sessions
from bookshelf.db.database import Connection
from bookshelf.db.types import utc_now
from bookshelf.users.schemas import Role, User


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a request, and the sign-in session their token belongs to."""

    user: User
    session_id: uuid.UUID

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role


async def revoke_session(connection: Connection, session_id: uuid.UUID) -> None:
    await connection.execute(
        update(auth_sessions)
        .where(auth_sessions.c.id == session_id, auth_sessions.c.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )


async def sign_out_everywhere(
    connection: Connection, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> None:
    """Take the account back from whoever else holds it: revoke every sign-in session (except,
    optionally, the session ``keep``) and void every link mailed for the account's holder
    (verification, email change, password reset: ``account_tokens.HOLDER_PURPOSES``).

    Every flow that changes who holds an account calls this — a password reset or change,
    "sign out everywhere", a deactivation, a promotion from the command line, a cancelled email
    change — so none of them leaves a way back in through another (a pending email change that
    survived a reset was one)."""
    statement = update(auth_sessions).where(
        auth_sessions.c.user_id == user_id, auth_sessions.c.revoked_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(auth_sessions.c.id != keep)
    await connection.execute(statement.values(revoked_at=utc_now()))
    await account_tokens.revoke_holder_tokens(connection, user_id)
