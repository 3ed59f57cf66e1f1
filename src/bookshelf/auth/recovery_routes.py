"""Email verification and password reset: ``/auth/verify-email``, ``/auth/password-reset``.

The endpoints that take an address answer 202 with the same body whatever the address (it may
have no account), after the same work: nobody learns from them who has an account.
"""

from __future__ import annotations

from fastapi import Depends, Request, Response, status

from bookshelf.api import feature_router, json_response, require_json_body
from bookshelf.auth import flows
from bookshelf.auth import recovery as recovery_service
from bookshelf.auth.dependencies import AuthDep, MailLimitsDep, RecoveryDep
from bookshelf.auth.schemas import (
    Accepted,
    CancelEmailChangeRequest,
    EmailRequest,
    PasswordResetConfirm,
    VerifyEmailRequest,
)
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.ops.ratelimit import client_address_key
from bookshelf.problems import problem_responses

router = feature_router("/auth", tags=["auth"])

RESENT = Accepted(
    detail="If the address has an account that is not verified yet, a new link is on its way."
)
RESET_SENT = Accepted(
    detail="If the address has an account, a mail with a link to choose a new password is on "
    "its way."
)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def verify_email(payload: VerifyEmailRequest, connection: ConnectionDep) -> Response:
    """Follow a verification link (or the link that confirms a new address): the token from
    its `token=` parameter marks the address verified. Each link works once."""
    await recovery_service.verify_email(connection, payload.token)
    return Response(status_code=204)


@router.post(
    "/email-change/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 409, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def cancel_email_change(
    payload: CancelEmailChangeRequest, connection: ConnectionDep, recovery: RecoveryDep
) -> Response:
    """Follow the link mailed to an account's address when a change of address was asked:
    the change cannot be confirmed any more (or, already confirmed, is undone), the account
    is signed out everywhere and the address is mailed a link to choose a new password. The
    link works until the change's own link would have expired, and once."""
    await recovery_service.cancel_email_change(connection, recovery, payload.token)
    return Response(status_code=204)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(400, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def resend_verification(
    payload: EmailRequest,
    connection: ConnectionDep,
    recovery: RecoveryDep,
    mail_limits: MailLimitsDep,
) -> Response:
    """Send a new verification link, if the address has an unverified account (earlier
    links stop working). Always 202."""
    if mail_limits is None or await mail_limits.target_allows(payload.email):
        await recovery_service.resend_verification(connection, recovery, payload.email)
    return json_response(RESENT, status_code=202)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(400, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def request_password_reset(
    payload: EmailRequest,
    connection: ConnectionDep,
    recovery: RecoveryDep,
    mail_limits: MailLimitsDep,
) -> Response:
    """Mail a link to choose a new password, if the address has an active account (earlier
    links stop working). Always 202."""
    if mail_limits is None or await mail_limits.target_allows(payload.email):
        await recovery_service.request_password_reset(connection, recovery, payload.email)
    return json_response(RESET_SENT, status_code=202)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def confirm_password_reset(
    request: Request,
    payload: PasswordResetConfirm,
    database: DatabaseDep,
    auth: AuthDep,
) -> Response:
    """Set a new password with the token of a reset link (policy as at registration). Every
    session of the account is signed out; the link works once."""
    await flows.reset_password(
        database,
        auth,
        token=payload.token,
        new_password=payload.new_password,
        client=client_address_key(request.scope),
    )
    return Response(status_code=204)
