"""Tables of sign-in sessions and their refresh tokens (the accounts are ``users.models``).

A session is one sign-in (one refresh-token family). Access tokens name their session (``sid``),
so revoking a session — logout, refresh-token reuse, password change, deactivation — stops its
access tokens at once, on every instance, without a token denylist.
"""

from sqlalchemy import Column, ForeignKey, Index, String, Table, Uuid, text

from bookshelf.db.metadata import metadata
from bookshelf.db.types import UtcDateTime

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Index("ix_auth_sessions_user_id", "user_id"),
    Index("ix_auth_sessions_expires_at", "expires_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    # Only a SHA-256 of the token is stored: a database leak yields no usable refresh token.
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", Uuid, ForeignKey("auth_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    # Set when the token is exchanged; presenting it again is reuse (the family is revoked).
    Column("used_at", UtcDateTime),
    Index("ix_refresh_tokens_session_id", "session_id"),
    Index("ix_refresh_tokens_expires_at", "expires_at"),
)

# Single-use tokens mailed to an address: to verify it, to reset a password, or to confirm an
# email change (``email`` is then the new address). Only a SHA-256 of the token is stored.
account_tokens = Table(
    "account_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("email", String(320), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    # Set when used, or when a newer token of the same purpose supersedes it.
    Column("used_at", UtcDateTime),
    Index("ix_account_tokens_user_id_purpose", "user_id", "purpose"),
    Index("ix_account_tokens_expires_at", "expires_at"),
    # At most one live token per account and holder's purpose (``account_tokens.issue``
    # supersedes under a lock; this is the database's guarantee). Cancel links are exempt:
    # every notice of an address change keeps its own.
    Index(
        "ux_account_tokens_one_alive",
        "user_id",
        "purpose",
        unique=True,
        postgresql_where=text("used_at IS NULL AND purpose <> 'cancel-email-change'"),
        sqlite_where=text("used_at IS NULL AND purpose <> 'cancel-email-change'"),
    ),
)

# The client address buckets (``ops.ratelimit.address_key``, as a SHA-256) each account has
# signed in from with its password: attempts from them do not count against the account's
# budget of sign-in attempts (``ops.ratelimit``), so a guesser spending that budget cannot lock
# the owner out of the places the owner signs in from. Forgotten ``expires_at`` after the last
# sign-in from there.
sign_in_addresses = Table(
    "sign_in_addresses",
    metadata,
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("address_hash", String(64), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_sign_in_addresses_expires_at", "expires_at"),
)
