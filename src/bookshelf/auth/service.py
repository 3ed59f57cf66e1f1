"""Accounts, sign-in, token rotation and revocation (no web framework here)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bookshelf.auth.exceptions import (
    EmailAlreadyRegistered,
    InvalidAccessToken,
    InvalidGrant,
    WeakPassword,
    WrongCurrentPassword,
)
from bookshelf.auth.models import auth_sessions, refresh_tokens, users
from bookshelf.auth.passwords import PasswordHasher, password_problems
from bookshelf.auth.schemas import (
    ProfileUpdate,
    Registration,
    Role,
    TokenPair,
    User,
    normalise_email,
)
from bookshelf.auth.tokens import AccessClaims, TokenSigner, hash_refresh_token, new_refresh_token
from bookshelf.types import utc_now

USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.display_name,
    users.c.role,
    users.c.is_active,
    users.c.created_at,
    users.c.updated_at,
)


@dataclass(frozen=True)
class Auth:
    """Everything sign-in needs, built once per process from settings."""

    signer: TokenSigner
    hasher: PasswordHasher
    access_ttl: timedelta
    refresh_ttl: timedelta


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


@dataclass(frozen=True)
class RefreshTokenReused:
    """A rotated refresh token came back: its session has been revoked (commit that)."""


async def create_user(
    connection: AsyncConnection,
    *,
    email: str,
    password_hash: str,
    display_name: str | None,
    role: Role = Role.READER,
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
        "created_at": now,
        "updated_at": now,
    }
    try:
        await connection.execute(insert(users).values(row))
    except IntegrityError:
        raise EmailAlreadyRegistered() from None
    return User.model_validate(row)


async def create_or_promote_admin(
    connection: AsyncConnection,
    *,
    email: str,
    password_hash: str,
    display_name: str | None,
) -> str:
    """Bootstrap an admin: create the account, or make an existing one an active admin.
    Returns ``"created"`` or ``"promoted"``."""
    promoted = await connection.execute(
        update(users)
        .where(users.c.email == email)
        .values(role=Role.ADMIN.value, is_active=True, updated_at=utc_now())
    )
    if promoted.rowcount:
        return "promoted"
    await create_user(
        connection,
        email=email,
        password_hash=password_hash,
        display_name=display_name,
        role=Role.ADMIN,
    )
    return "created"


async def register(connection: AsyncConnection, data: Registration, password_hash: str) -> User:
    """A new reader account (roles are granted by admins, never chosen at registration)."""
    return await create_user(
        connection, email=data.email, password_hash=password_hash, display_name=data.display_name
    )


@dataclass(frozen=True)
class Credentials:
    """What sign-in needs to know about an account (None fields: no such account)."""

    user_id: uuid.UUID | None
    password_hash: str | None
    is_active: bool


async def find_credentials(connection: AsyncConnection, email: str) -> Credentials:
    try:
        normalised = normalise_email(email)
    except ValueError:
        return Credentials(None, None, is_active=False)
    row = (
        await connection.execute(
            select(users.c.id, users.c.password_hash, users.c.is_active).where(
                users.c.email == normalised
            )
        )
    ).first()
    if row is None:
        return Credentials(None, None, is_active=False)
    return Credentials(row.id, row.password_hash, row.is_active)


@dataclass(frozen=True)
class VerifiedSignIn:
    user_id: uuid.UUID
    # A new hash when the stored one was made with older cost settings.
    upgraded_hash: str | None


async def check_password(auth: Auth, credentials: Credentials, password: str) -> VerifiedSignIn:
    """The account if ``password`` is right and the account active, else ``InvalidGrant``.

    Unknown email, wrong password and deactivated account take the same path and the same time
    (one Argon2 verification each) and give the same answer. Hashes, so no connection may be
    held while awaiting it.
    """
    matches, upgraded = await auth.hasher.verify_and_update(password, credentials.password_hash)
    if credentials.user_id is None or not matches or not credentials.is_active:
        raise InvalidGrant()
    return VerifiedSignIn(credentials.user_id, upgraded)


async def store_upgraded_hash(
    connection: AsyncConnection, user_id: uuid.UUID, *, old_hash: str, new_hash: str
) -> None:
    """Replace a hash made with older cost settings, unless the password changed meanwhile."""
    await connection.execute(
        update(users)
        .where(users.c.id == user_id, users.c.password_hash == old_hash)
        .values(password_hash=new_hash)
    )


async def _issue_refresh_token(
    connection: AsyncConnection, auth: Auth, session_id: uuid.UUID, now: datetime
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


async def start_session(connection: AsyncConnection, auth: Auth, user_id: uuid.UUID) -> TokenPair:
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
    connection: AsyncConnection, auth: Auth, token: str
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


async def revoke_session(connection: AsyncConnection, session_id: uuid.UUID) -> None:
    await connection.execute(
        update(auth_sessions)
        .where(auth_sessions.c.id == session_id, auth_sessions.c.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )


async def revoke_user_sessions(
    connection: AsyncConnection, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> None:
    """Sign a user out everywhere (except, optionally, the session ``keep``)."""
    statement = update(auth_sessions).where(
        auth_sessions.c.user_id == user_id, auth_sessions.c.revoked_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(auth_sessions.c.id != keep)
    await connection.execute(statement.values(revoked_at=utc_now()))


# Built once (it runs on every authenticated request); see books.service._SELECT_BOOK.
_SELECT_PRINCIPAL = (
    select(*USER_COLUMNS, auth_sessions.c.revoked_at, auth_sessions.c.expires_at)
    .join(auth_sessions, auth_sessions.c.user_id == users.c.id)
    .where(users.c.id == bindparam("user_id"), auth_sessions.c.id == bindparam("session_id"))
)


async def load_principal(connection: AsyncConnection, claims: AccessClaims) -> Principal:
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


async def current_password_hash(connection: AsyncConnection, user_id: uuid.UUID) -> str:
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


async def prepare_password_change(
    auth: Auth, principal: Principal, changes: ProfileUpdate, current_hash: str
) -> PasswordChange | None:
    """Check the policy, then the current password, then hash the new one — before any write,
    and with no connection held (two slow hashes). None when no password change is asked."""
    if changes.password is None or changes.current_password is None:
        return None
    problems = password_problems(changes.password, email=principal.user.email)
    if problems:
        raise WeakPassword(problems)
    if not await auth.hasher.verify(changes.current_password, current_hash):
        raise WrongCurrentPassword()
    return PasswordChange(old_hash=current_hash, new_hash=await auth.hasher.hash(changes.password))


async def update_profile(
    connection: AsyncConnection,
    principal: Principal,
    changes: ProfileUpdate,
    password_change: PasswordChange | None,
) -> User:
    """Change one's display name and/or password; a password change signs out other sessions.

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
        await revoke_user_sessions(connection, principal.id, keep=principal.session_id)
    return User.model_validate(row, from_attributes=True)
