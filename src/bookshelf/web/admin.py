"""Admins' pages: every account (keyset pages, searched by the start of its address), and
changing one's role, activity or verification, with the API's rules (``users.service``:
nobody takes their own admin rights away, so an active admin always remains)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from bookshelf.api import uuid_or_not_found
from bookshelf.auth import accounts
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.db.database import Connection, unit_of_work
from bookshelf.users import service as users
from bookshelf.users.exceptions import CannotChangeOwnAccess, UserNotFound
from bookshelf.users.schemas import Role, UserAdminUpdate
from bookshelf.web.dependencies import PageViewer, PostedForm
from bookshelf.web.pages import redirect
from bookshelf.web.paging import pager, read_trail
from bookshelf.web.viewer import Viewer, page

router = APIRouter(include_in_schema=False)

USERS = "/admin/users"
PAGE_SIZE = 20
_MAX_SEARCH = 320
# The changes the page's buttons make: each sends one field.
_CHANGES = {
    "role": lambda value: {"role": value},
    "active": lambda value: {"is_active": value == "true"},
    "verified": lambda value: {"email_verified": value == "true"},
}


def _search(value: str | None) -> str:
    return (value or "").strip().lower()[:_MAX_SEARCH]


async def _users_page(
    request: Request,
    viewer: Viewer,
    connection: Connection,
    *,
    search: str,
    status: int = 200,
    error: str | None = None,
) -> Response:
    params = request.query_params
    cursor = params.get("cursor") or None if request.method == "GET" else None
    items, next_cursor = await users.list_users(
        connection, limit=PAGE_SIZE, cursor=cursor, email_prefix=search or None
    )
    pages = pager(
        USERS,
        [("email", search)] if search else [],
        cursor=cursor,
        trail=read_trail(params.get("trail")) if request.method == "GET" else [],
        next_cursor=next_cursor,
    )
    return page(
        request,
        viewer,
        "admin_users.html",
        status=status,
        accounts=items,
        search=search,
        pages=pages,
        error=error,
        roles=[role.value for role in Role],
    )


@router.get(USERS)
async def list_users(request: Request, viewer: PageViewer, connection: ConnectionDep) -> Response:
    """Every account, by address (admins)."""
    viewer.require(Role.ADMIN, next_path=USERS)
    return await _users_page(
        request, viewer, connection, search=_search(request.query_params.get("email"))
    )


@router.post(f"{USERS}/{{user_id}}")
async def change_user(
    user_id: str, request: Request, posted: PostedForm, database: DatabaseDep
) -> Response:
    """Change one account's role, activity or verification (admins); takes effect at once."""
    admin = posted.viewer.require(Role.ADMIN, writes=True, next_path=USERS)
    target = uuid_or_not_found(user_id, UserNotFound)
    search = _search(posted.text("email"))
    change = _CHANGES.get(posted.text("change"))
    try:
        if change is None:
            raise ValueError("no such change")
        changes = UserAdminUpdate.model_validate(change(posted.text("value")))
    except ValueError:  # pydantic's ValidationError is one
        refusal = (422, "That change is not one an account can have.")
    else:
        try:
            async with unit_of_work(database, write=True) as connection:
                await accounts.update_user(connection, admin, target, changes)
        except CannotChangeOwnAccess as refused:
            refusal = (409, refused.detail)
        else:
            query = f"?{urlencode({'email': search})}" if search else ""
            return posted.viewer.finish(redirect(f"{USERS}{query}"))
    status, error = refusal
    async with unit_of_work(database, write=False) as connection:
        return await _users_page(
            request, posted.viewer, connection, search=search, status=status, error=error
        )
