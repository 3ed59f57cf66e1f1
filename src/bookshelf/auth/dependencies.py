"""The one way in for authentication: ``CurrentUser`` and the role-gated aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from bookshelf.auth import service
from bookshelf.auth.exceptions import (
    EmailNotVerified,
    InsufficientRole,
    InvalidAccessToken,
    InvalidToken,
    NotAuthenticated,
)
from bookshelf.auth.mail_limits import MailLimits
from bookshelf.auth.recovery import Recovery
from bookshelf.auth.service import Auth
from bookshelf.auth.sessions import Principal
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.db.database import Connection, unit_of_work
from bookshelf.ops.ratelimit import RateLimits
from bookshelf.users.schemas import Role

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret

# auto_error=False: a missing token is reported by us, as a problem with WWW-Authenticate.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

_RANK = {Role.READER: 0, Role.EDITOR: 1, Role.ADMIN: 2}
# Requests with these methods only read: an unverified account may make them.
_READING = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_auth(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


AuthDep = Annotated[Auth, Depends(get_auth)]


async def _authenticate(
    request: Request,
    connection: Connection,
    token: str | None,
    *,
    writes: bool = True,
) -> Principal:
    if token is None:
        raise NotAuthenticated()
    auth: Auth = request.app.state.auth
    try:
        claims = auth.signer.verify(token)
    except InvalidToken as error:
        raise InvalidAccessToken(str(error)) from None
    principal = await service.load_principal(connection, claims)
    # For the access log, which runs outside the route.
    request.state.user_id = principal.id
    if (
        writes
        and request.method not in _READING
        and not principal.user.email_verified
        and request.app.state.settings.requires_verified_email
    ):
        raise EmailNotVerified()
    return principal


# Each gate is one dependency that does the whole check (not a chain of small ones): FastAPI
# solves every dependency of a request anew, so on the routes that most requests take the
# chain's depth was measured (bench/RESULTS.md).
Token = Annotated[str | None, Depends(oauth2_scheme)]


async def get_current_user(request: Request, connection: ConnectionDep, token: Token) -> Principal:
    return await _authenticate(request, connection, token)


async def get_current_user_released(
    request: Request, database: DatabaseDep, token: Token
) -> Principal:
    """The same check on a connection of its own that goes back to the pool at once, for
    routes that hash passwords and so must not hold the request's connection meanwhile."""
    async with unit_of_work(database, write=False) as connection:
        return await _authenticate(request, connection, token)


async def get_current_session(
    request: Request, connection: ConnectionDep, token: Token
) -> Principal:
    """``CurrentUser`` for what an unverified account may always do (sign out)."""
    return await _authenticate(request, connection, token, writes=False)


CurrentUser = Annotated[Principal, Depends(get_current_user)]
CurrentSession = Annotated[Principal, Depends(get_current_session)]
CurrentUserReleased = Annotated[Principal, Depends(get_current_user_released)]


async def get_rate_limits(request: Request) -> RateLimits | None:
    limits: RateLimits | None = request.app.state.rate_limits
    return limits


RateLimitsDep = Annotated[RateLimits | None, Depends(get_rate_limits)]


async def get_mail_limits(request: Request) -> MailLimits | None:
    """The budgets of the endpoints that cause mail (None when rate limiting is off)."""
    limits: RateLimits | None = request.app.state.rate_limits
    if limits is None:
        return None
    existing: MailLimits | None = getattr(request.app.state, "mail_limits", None)
    if existing is None or existing.limits is not limits:
        existing = MailLimits(limits, request.app.state.settings.rate_limit_mail_target)
        request.app.state.mail_limits = existing
    return existing


MailLimitsDep = Annotated[MailLimits | None, Depends(get_mail_limits)]


async def get_recovery(request: Request) -> Recovery:
    return Recovery.from_settings(request.app.state.settings)


RecoveryDep = Annotated[Recovery, Depends(get_recovery)]


def require_role(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through signed-in users with ``role`` or a higher one."""

    async def check(request: Request, connection: ConnectionDep, token: Token) -> Principal:
        principal = await _authenticate(request, connection, token)
        if _RANK[principal.role] < _RANK[role]:
            raise InsufficientRole(role.value)
        return principal

    return check


EditorUser = Annotated[Principal, Depends(require_role(Role.EDITOR))]
AdminUser = Annotated[Principal, Depends(require_role(Role.ADMIN))]
