"""Single-use tokens mailed to an address: 256 random bits, stored only as a SHA-256, bound to
one account, one purpose and one address, short-lived, and refused once used or superseded by a
newer token of the same purpose.

Two kinds, by whom they act for:
- the account's *holder* (verify an address, confirm an email change, reset the password): at
  most one of each purpose is alive per account (a new one supersedes the last; the database
  enforces it), and every change of who holds the account (a password reset or change, signing
  out everywhere, a deactivation, an address change) voids them all (``revoke_holder_tokens``);
- the *previous address* (cancel an email change): mailed to the address being replaced, they
  must outlive what the holder does, since the holder may be the one who took the account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, insert, select, update

from bookshelf.auth.exceptions import InvalidAccountToken
from bookshelf.auth.models import account_tokens
from bookshelf.auth.tokens import hash_refresh_token, new_refresh_token
from bookshelf.db.database import Connection
from bookshelf.db.types import utc_now
from bookshelf.users.models import users


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    CHANGE_EMAIL = "change-email"
    RESET_PASSWORD = "reset-password"  # noqa: S105 - a purpose, not a secret
    CANCEL_EMAIL_CHANGE = "cancel-email-change"


# The purposes that act for the account's holder (see the module docstring).
HOLDER_PURPOSES = (Purpose.VERIFY_EMAIL, Purpose.CHANGE_EMAIL, Purpose.RESET_PASSWORD)


@dataclass(frozen=True)
class TokenUse:
    user_id: uuid.UUID
    purpose: Purpose
    email: str


async def issue(
    connection: Connection,
    *,
    user_id: uuid.UUID,
    purpose: Purpose,
    email: str,
    ttl: timedelta,
) -> str:
    """A new token. For a holder's purpose, every earlier unused token of this account and
    purpose stops working, and of two issued at once exactly one stays alive: the account's
    row is locked first (PostgreSQL; SQLite's write transaction already holds the database's
    write lock), so the second waits and then supersedes the first."""
    now = utc_now()
    if purpose in HOLDER_PURPOSES:
        await connection.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
        await connection.execute(
            update(account_tokens)
            .where(
                account_tokens.c.user_id == user_id,
                account_tokens.c.purpose == purpose.value,
                account_tokens.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
    token = new_refresh_token()  # the same 256-bit random, URL-safe text
    await connection.execute(
        insert(account_tokens).values(
            token_hash=hash_refresh_token(token),
            user_id=user_id,
            purpose=purpose.value,
            email=email,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


async def revoke_holder_tokens(
    connection: Connection, user_id: uuid.UUID, *purposes: Purpose
) -> None:
    """Void the account's unused tokens of ``purposes`` (default: every holder's purpose)."""
    chosen = purposes or HOLDER_PURPOSES
    await connection.execute(
        update(account_tokens)
        .where(
            account_tokens.c.user_id == user_id,
            account_tokens.c.purpose.in_([purpose.value for purpose in chosen]),
            account_tokens.c.used_at.is_(None),
        )
        .values(used_at=utc_now())
    )


def _usable(token: str, purposes: tuple[Purpose, ...]) -> list[ColumnElement[bool]]:
    return [
        account_tokens.c.token_hash == hash_refresh_token(token),
        account_tokens.c.purpose.in_([purpose.value for purpose in purposes]),
        account_tokens.c.used_at.is_(None),
        account_tokens.c.expires_at > utc_now(),
    ]


async def peek(connection: Connection, token: str, *purposes: Purpose) -> TokenUse:
    """What a usable token is for, without using it; ``InvalidAccountToken`` otherwise."""
    row = (
        await connection.execute(
            select(
                account_tokens.c.user_id, account_tokens.c.purpose, account_tokens.c.email
            ).where(*_usable(token, purposes))
        )
    ).first()
    if row is None:
        raise InvalidAccountToken()
    return TokenUse(row.user_id, Purpose(row.purpose), row.email)


async def consume(connection: Connection, token: str, *purposes: Purpose) -> TokenUse:
    """Use a token: one conditional UPDATE, so of two concurrent uses exactly one wins."""
    row = (
        await connection.execute(
            update(account_tokens)
            .where(*_usable(token, purposes))
            .values(used_at=utc_now())
            .returning(account_tokens.c.user_id, account_tokens.c.purpose, account_tokens.c.email)
        )
    ).first()
    if row is None:
        raise InvalidAccountToken()
    return TokenUse(row.user_id, Purpose(row.purpose), row.email)
