"""``/users``: one's own account, and (admins) everyone's.

The accounts themselves are ``users`` (table, schemas, listing); these endpoints are here, in
``auth``, because every one of them needs a signed-in user, and changing a password, an
address or an account's access goes through sign-in's parts (``auth.accounts``): ``auth``
builds on ``users``, never the reverse.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from bookshelf.api import (
    feature_router,
    json_response,
    next_page_headers,
    require_json_body,
)
from bookshelf.auth import accounts, flows
from bookshelf.auth.dependencies import (
    AdminUser,
    AuthDep,
    CurrentUser,
    CurrentUserReleased,
    MailLimitsDep,
    RateLimitsDep,
    RecoveryDep,
)
from bookshelf.auth.schemas import Accepted, ProfileUpdate
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.ops.ratelimit import client_address_key
from bookshelf.problems import problem_responses
from bookshelf.users import service as users
from bookshelf.users.dependencies import UserId
from bookshelf.users.schemas import User, UserAdminUpdate, UserPage

router = feature_router("/users", tags=["users"])


@router.get("/me", response_model=User, responses=problem_responses(401))
async def read_me(principal: CurrentUser) -> Response:
    """The signed-in account."""
    return json_response(principal.user)


EMAIL_CHANGE_SENT = Accepted(
    detail="A link to confirm the new address is on its way to it; the address changes when "
    "the link is followed. Your current address has been told, with a link that cancels it."
)


@router.patch(
    "/me",
    response_model=User,
    responses={
        202: {"model": Accepted, "description": "An address change was asked: confirm by mail."},
        **problem_responses(400, 401, 403, 413, 415),
    },
    dependencies=[Depends(require_json_body)],
)
async def update_me(
    request: Request,
    changes: ProfileUpdate,
    principal: CurrentUserReleased,
    database: DatabaseDep,
    auth: AuthDep,
    limits: RateLimitsDep,
    mail_limits: MailLimitsDep,
    recovery: RecoveryDep,
) -> Response:
    """Change your display name or password (with `current_password`); a new password signs
    out your other sessions and voids every link mailed for the account. A new `email` (with
    `current_password`) is confirmed by a link mailed to it, and your current address is told,
    with a link that cancels the change: 202. A `current_password` sent with any change is
    checked."""
    user = await flows.change_profile(
        database,
        auth,
        principal,
        changes,
        limits=limits,
        mail_limits=mail_limits,
        recovery_settings=recovery,
        client=client_address_key(request.scope),
    )
    if changes.email is not None:
        return json_response(EMAIL_CHANGE_SENT, status_code=202)
    return json_response(user)


@router.get("", response_model=UserPage, responses=problem_responses(401, 403))
async def list_users(
    request: Request,
    _admin: AdminUser,
    connection: ConnectionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Every account, by email (admins only)."""
    items, next_cursor = await users.list_users(connection, limit=limit, cursor=cursor)
    page = UserPage(items=list(items), next_cursor=next_cursor)
    return json_response(page, headers=next_page_headers(request, next_cursor))


@router.patch(
    "/{user_id}",
    response_model=User,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def update_user(
    user_id: UserId, changes: UserAdminUpdate, admin: AdminUser, connection: ConnectionDep
) -> Response:
    """Change an account's role or deactivate it (admins only); takes effect at once."""
    user = await accounts.update_user(connection, admin, user_id, changes)
    return json_response(user)
