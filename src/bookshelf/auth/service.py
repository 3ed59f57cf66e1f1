"""Sign-up, sign-in, token rotation and the principal of a request (no web framework here).

Builds on the accounts of ``users`` (their table, schemas and columns); session revocation and
``Principal`` are ``auth.sessions``, which account management uses too.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bookshelf.auth.exceptions import EmailAlreadyRegistered, InvalidAccessToken, InvalidGrant
from bookshelf.auth.models import auth_sessions, refresh_tokens, sign_in_addresses
from bookshelf.auth.passwords import PasswordHasher
from bookshelf.auth.schemas import Registration, TokenPair, normalise_email
from bookshelf.auth.sessions import Principal, revoke_session, sign_out_everywhere
from bookshelf.auth.tokens import AccessClaims, TokenSigner, hash_refresh_token, new_refresh_token
from bookshelf.db.database import Connection
from bookshelf.db.exceptions import IntegrityViolation
from bookshelf.db.types import utc_now
from bookshelf.users.models import users
from bookshelf.users.schemas import Role, User
from bookshelf.users.service import USER_COLUMNS


@dataclass(frozen=True)
class Auth:
    """Everything sign-in needs, built once per process from settings."""

    signer: TokenSigner
    hasher: PasswordHasher
    access_ttl: timedelta
    refresh_ttl: timedelta


@dataclass(frozen=True)
class RefreshTokenReused:
    """A rotated refresh token came back: its session has been revoked (commit that)."""


async def create_user(
    connection: Connection,
    *,
    email: str,
    password_hash: str,
    display_name: str | None,
    role: Role = Role.READER,
    email_verified: bool = False,
) -> User:
    """Insert an account. The password is hashed by the caller beforehand, with no connection
    held (see auth.passwords)."""
    now = utc_now()
    row = {
        "id": uuid.uuid4(),
        "email": email,
        "display_name": display_name,
        "password_hash": password_hash,
        "role": role.value,
        "is_active": True,
        "email_verified": email_verified,
        "created_at": now,
        "updated_at": now,
    }
    try:
        await connection.execute(insert(users).values(row))
    except IntegrityViolation:
        raise EmailAlreadyRegistered() from None
    return User.model_validate(row)


async def promote_to_admin(
    connection: Connection, *, email: str, password_hash: str
) -> uuid.UUID | None:
    """Make the account at ``email`` an active, verified admin whose password is the one
    given, and take it back from whoever held it: every session signed out, every mailed link
    void. Only on an operator's explicit request (``bookshelf create-admin --promote``); None
    when the address has no account."""
    user_id: uuid.UUID | None = await connection.scalar(
        update(users)
        .where(users.c.email == email)
        .values(
            role=Role.ADMIN.value,
            is_active=True,
            email_verified=True,
            password_hash=password_hash,
            updated_at=utc_now(),
        )
        .returning(users.c.id)
    )
    if user_id is None:
        return None
    await sign_out_everywhere(connection, user_id)
    return user_id


async def register(connection: Connection, data: Registration, password_hash: str) -> User:
    """A new reader account (roles are granted by admins, never chosen at registration)."""
    return await create_user(
        connection, email=data.email, password_hash=password_hash, display_name=data.display_name
    )


@dataclass(frozen=True)
class Credentials:
    """What sign-in needs to know about an account (None fields: no such account)."""

    # The email as typed, normalised when it is one: what the account's budget is keyed by.
    login: str
    user_id: uuid.UUID | None = None
    password_hash: str | None = None
    is_active: bool = False
    email_verified: bool = False
    # Whether the account has signed in from the client's address bucket before.
    known_address: bool = False


# How long an address the account signed in from stays known after its last sign-in there.
SIGN_IN_ADDRESS_KEPT = timedelta(days=90)


def address_hash(address_key: str) -> str:
    """What is stored of a client's address bucket (``ops.ratelimit.address_key``)."""
    return hashlib.sha256(address_key.encode()).hexdigest()


async def find_credentials(connection: Connection, email: str, address_key: str) -> Credentials:
    """The account at ``email`` and whether it has signed in from ``address_key`` (one query)."""
    try:
        normalised = normalise_email(email)
    except ValueError:
        return Credentials(email.strip().lower())
    known = (
        exists()
        .where(
            sign_in_addresses.c.user_id == users.c.id,
            sign_in_addresses.c.address_hash == address_hash(address_key),
            sign_in_addresses.c.expires_at > utc_now(),
        )
        .label("known_address")
    )
    row = (
        await connection.execute(
            select(
                users.c.id, users.c.password_hash, users.c.is_active, users.c.email_verified, known
            ).where(users.c.email == normalised)
        )
    ).first()
    if row is None:
        return Credentials(normalised)
    return Credentials(
        normalised,
        row.id,
        row.password_hash,
        row.is_active,
        row.email_verified,
        bool(row.known_address),
    )


@dataclass(frozen=True)
class VerifiedSignIn:
    user_id: uuid.UUID
    # A new hash when the stored one was made with older cost settings.
    upgraded_hash: str | None


async def check_password(
    auth: Auth,
    credentials: Credentials,
    password: str,
    *,
    require_verified: bool,
    client: str | None = None,
) -> VerifiedSignIn:
    """The account if ``password`` is right and the account active (and, with
    ``require_verified``, its address verified), else ``InvalidGrant``.

    Unknown email, wrong password, deactivated account and unverified address take the same
    path and the same time (one Argon2 verification each) and give the same answer: else
    registering an address with a password of one's own, then signing in with it, would tell
    whether the address already had an account. Hashes, so no connection may be held while
    awaiting it; ``client`` is the caller's address bucket (its share of the hashing slots).
    """
    matches, upgraded = await auth.hasher.verify_and_update(
        password, credentials.password_hash, client=client
    )
    if (
        credentials.user_id is None
        or not matches
        or not credentials.is_active
        or (require_verified and not credentials.email_verified)
    ):
        raise InvalidGrant()
    return VerifiedSignIn(credentials.user_id, upgraded)


async def remember_address(connection: Connection, user_id: uuid.UUID, address_key: str) -> None:
    """Record that the account signed in from ``address_key`` (for ``SIGN_IN_ADDRESS_KEPT``)."""
    values = {
        "user_id": user_id,
        "address_hash": address_hash(address_key),
        "expires_at": utc_now() + SIGN_IN_ADDRESS_KEPT,
    }
    # Two sign-ins from one address at the same moment must not collide: an upsert, in the
    # database's own dialect (both spell it ON CONFLICT ... DO UPDATE).
    upsert = (
        postgresql.insert(sign_in_addresses)
        if connection.dialect == "postgresql"
        else sqlite.insert(sign_in_addresses)
    ).values(values)
    await connection.execute(
        upsert.on_conflict_do_update(
            index_elements=[sign_in_addresses.c.user_id, sign_in_addresses.c.address_hash],
            set_={"expires_at": upsert.excluded.expires_at},
        )
    )


async def store_upgraded_hash(
    connection: Connection, user_id: uuid.UUID, *, old_hash: str, new_hash: str
) -> None:
    """Replace a hash made with older cost settings, unless the password changed meanwhile."""
    await connection.execute(
        update(users)
        .where(users.c.id == user_id, users.c.password_hash == old_hash)
        .values(password_hash=new_hash)
    )


async def _issue_refresh_token(
    connection: Connection, auth: Auth, session_id: uuid.UUID, now: datetime
) -> str:
    token = new_refresh_token()
    await connection.execute(
        insert(refresh_tokens).values(
            token_hash=hash_refresh_token(token),
            session_id=session_id,
            created_at=now,
            expires_at=now + auth.refresh_ttl,
        )
    )
    return token


def _token_pair(
    auth: Auth, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime, refresh: str
) -> TokenPair:
    access = auth.signer.issue(user_id=user_id, session_id=session_id, now=now, ttl=auth.access_ttl)
    return TokenPair(
        access_token=access,
        expires_in=int(auth.access_ttl.total_seconds()),
        refresh_token=refresh,
    )


async def start_session(connection: Connection, auth: Auth, user_id: uuid.UUID) -> TokenPair:
    """Sign in: a new session (refresh-token family) and its first pair of tokens."""
    now = utc_now()
    session_id = uuid.uuid4()
    await connection.execute(
        insert(auth_sessions).values(
            id=session_id, user_id=user_id, created_at=now, expires_at=now + auth.refresh_ttl
        )
    )
    refresh = await _issue_refresh_token(connection, auth, session_id, now)
    return _token_pair(auth, user_id, session_id, now, refresh)


async def rotate_refresh_token(
    connection: Connection, auth: Auth, token: str
) -> TokenPair | RefreshTokenReused:
    """Exchange a refresh token for a new pair; the old one can never be used again.

    Marking the token used is a single conditional UPDATE, so of two concurrent exchanges of
    the same token exactly one wins. A token that was already exchanged is reuse — it was
    stolen, or the client is broken — and revokes the whole session (RFC 9700 4.14.2).
    """
    now = utc_now()
    token_hash = hash_refresh_token(token)
    claimed = (
        await connection.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
            .returning(refresh_tokens.c.session_id, refresh_tokens.c.expires_at)
        )
    ).first()
    if claimed is None:
        session_id = await connection.scalar(
            select(refresh_tokens.c.session_id).where(refresh_tokens.c.token_hash == token_hash)
        )
        if session_id is None:
            raise InvalidGrant("The refresh token is not valid.")
        await revoke_session(connection, session_id)
        return RefreshTokenReused()
    session = (
        await connection.execute(
            select(
                auth_sessions.c.user_id,
                auth_sessions.c.revoked_at,
                auth_sessions.c.expires_at,
                users.c.is_active,
            )
            .join(users, users.c.id == auth_sessions.c.user_id)
            .where(auth_sessions.c.id == claimed.session_id)
        )
    ).one()
    if (
        claimed.expires_at <= now
        or session.expires_at <= now  # a session has a fixed lifetime, however often refreshed
        or session.revoked_at is not None
        or not session.is_active
    ):
        raise InvalidGrant("The refresh token is not valid.")
    refresh = await _issue_refresh_token(connection, auth, claimed.session_id, now)
    return _token_pair(auth, session.user_id, claimed.session_id, now, refresh)


# Built once (it runs on every authenticated request); see books.service._SELECT_BOOK.
_SELECT_PRINCIPAL = (
    select(*USER_COLUMNS, auth_sessions.c.revoked_at, auth_sessions.c.expires_at)
    .join(auth_sessions, auth_sessions.c.user_id == users.c.id)
    .where(users.c.id == bindparam("user_id"), auth_sessions.c.id == bindparam("session_id"))
)


async def load_principal(connection: Connection, claims: AccessClaims) -> Principal:
    """The user behind a verified access token, checked live against the database, so a
    deactivated account or a revoked session is refused at once, by every instance."""
    row = (
        await connection.execute(
            _SELECT_PRINCIPAL, {"user_id": claims.user_id, "session_id": claims.session_id}
        )
    ).first()
    if row is None:
        raise InvalidAccessToken("the access token names no current account")
    if not row.is_active:
        raise InvalidAccessToken("the account is deactivated")
    if row.revoked_at is not None:
        raise InvalidAccessToken("the session of this access token was signed out")
    if row.expires_at <= utc_now():
        raise InvalidAccessToken("the session of this access token has expired")
    return Principal(
        user=User.model_validate(row, from_attributes=True), session_id=claims.session_id
    )
