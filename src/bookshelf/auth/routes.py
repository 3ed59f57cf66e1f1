"""Sign-up, sign-in (OAuth2 password flow), token refresh and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request, Response, status

from bookshelf.api import feature_router, json_response, require_json_body
from bookshelf.auth import flows, service, sessions
from bookshelf.auth.dependencies import (
    AuthDep,
    CurrentSession,
    MailLimitsDep,
    RateLimitsDep,
    RecoveryDep,
)
from bookshelf.auth.exceptions import InvalidGrant
from bookshelf.auth.schemas import Accepted, RefreshRequest, Registration, TokenPair
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.dependencies import SettingsDep
from bookshelf.ops.ratelimit import client_address_key
from bookshelf.problems import problem_responses

router = feature_router("/auth", tags=["auth"])

# Token responses must never be cached (RFC 6749 5.1).
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# One answer for every registration, whether or not the address is taken.
REGISTERED = Accepted(
    detail="If the address can be used, a mail is on its way to it: follow its link to verify "
    "the account. The mail says when you can sign in."
)


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(400, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def register(
    request: Request,
    payload: Registration,
    database: DatabaseDep,
    auth: AuthDep,
    recovery: RecoveryDep,
    mail_limits: MailLimitsDep,
) -> Response:
    """Create an account (role `reader`, unverified) and mail it a verification link; an
    address that has an account is mailed a warning instead. The answer is the same either
    way. Passwords: 12+ characters, not a common one."""
    await flows.register(
        database,
        auth,
        recovery,
        mail_limits,
        payload,
        client=client_address_key(request.scope),
    )
    return json_response(REGISTERED, status_code=202)


@router.post("/token", response_model=TokenPair, responses=problem_responses(400, 413))
async def issue_token(
    request: Request,
    database: DatabaseDep,
    auth: AuthDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
    username: Annotated[str, Form(max_length=320, description="The account's email.")],
    password: Annotated[str, Form(max_length=1024)],
    grant_type: Annotated[str, Form(pattern="^password$")] = "password",
) -> Response:
    """OAuth2 password flow: exchange email and password for an access and a refresh token.
    Until its address is verified (where verification is required), an account's sign-in is
    refused exactly as a wrong password is. Attempts on one account from addresses it has
    never signed in from share a budget (`BOOKSHELF_RATE_LIMIT_SIGN_IN_ACCOUNT`): 429 when
    spent."""
    tokens = await flows.sign_in(
        database,
        auth,
        limits,
        email=username,
        password=password,
        client=client_address_key(request.scope),
        require_verified=settings.requires_verified_email,
    )
    return json_response(tokens, headers=_NO_STORE)


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=problem_responses(400, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def refresh(payload: RefreshRequest, connection: ConnectionDep, auth: AuthDep) -> Response:
    """Exchange a refresh token for a new pair. Each refresh token works once; presenting a
    used one again signs out the whole session."""
    outcome = await service.rotate_refresh_token(connection, auth, payload.refresh_token)
    if isinstance(outcome, service.RefreshTokenReused):
        # The revocation must stick even though the request fails.
        await connection.commit()
        raise InvalidGrant("The refresh token was already used; the session is now signed out.")
    return json_response(outcome, headers=_NO_STORE)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401))
async def logout(principal: CurrentSession, connection: ConnectionDep) -> Response:
    """Sign out: the session's refresh and access tokens stop working at once."""
    await sessions.revoke_session(connection, principal.session_id)
    return Response(status_code=204)


@router.post(
    "/logout-everywhere",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401),
)
async def logout_everywhere(principal: CurrentSession, connection: ConnectionDep) -> Response:
    """Sign out every session of the account, this one included, and void every link mailed
    for it (verification, email change, password reset): for a lost device or a shared
    password. Sign in again afterwards."""
    await sessions.sign_out_everywhere(connection, principal.id)
    return Response(status_code=204)
