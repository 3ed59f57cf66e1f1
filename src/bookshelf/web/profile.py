"""My account: the signed-in visitor's name, password and address, and "sign out
everywhere", through the API's own flow (``auth.flows.change_profile``) and sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from bookshelf.auth import flows, sessions
from bookshelf.auth.exceptions import WeakPassword, WrongCurrentPassword
from bookshelf.auth.schemas import ProfileUpdate
from bookshelf.db.connections import DatabaseDep
from bookshelf.db.database import unit_of_work
from bookshelf.ops.ratelimit import client_address_key
from bookshelf.web.dependencies import (
    AccountServices,
    AccountServicesDep,
    PageViewer,
    Posted,
    PostedForm,
)
from bookshelf.web.forms import domain_field_errors, field_errors
from bookshelf.web.pages import redirect
from bookshelf.web.viewer import Viewer, page

router = APIRouter(include_in_schema=False)

ACCOUNT = "/account"
# What a change says when the browser comes back to the page (never text from the address).
NOTICES = {
    "name": "Your name is saved.",
    "password": "Your password is changed; your other sessions were signed out.",
}
EMAIL_CHANGE_SENT = (
    "A link to confirm the new address is on its way to it: the address changes when the link "
    "is followed. Your current address has been told, with a link that cancels the change."
)


def _account_page(
    request: Request,
    viewer: Viewer,
    *,
    status: int = 200,
    errors: dict[str, dict[str, str]] | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    user = viewer.require(next_path=ACCOUNT).user
    return page(
        request,
        viewer,
        "account.html",
        status=status,
        account=user,
        errors=errors or {},
        form={"display_name": user.display_name or "", "email": "", **(form or {})},
        notice=notice,
    )


@router.get(ACCOUNT)
async def account(request: Request, viewer: PageViewer) -> Response:
    """My account."""
    return _account_page(request, viewer, notice=NOTICES.get(request.query_params.get("done", "")))


async def _change(
    request: Request,
    posted: Posted,
    services: AccountServices,
    *,
    section: str,
    values: dict[str, Any],
) -> Response | None:
    """Make the change ``values`` describe; None when made, else the page with the reasons
    beside the fields of ``section``."""
    principal = posted.viewer.require(writes=True, next_path=ACCOUNT)
    try:
        changes = ProfileUpdate.model_validate(values)
        await flows.change_profile(
            services.database,
            services.auth,
            principal,
            changes,
            limits=services.limits,
            mail_limits=services.mail_limits,
            recovery_settings=services.recovery,
            client=client_address_key(request.scope),
        )
    except ValidationError as error:
        reasons = field_errors(error)
    except (WeakPassword, WrongCurrentPassword) as error:
        reasons = domain_field_errors(error, field="current_password")
    else:
        return None
    shown = {key: value for key, value in values.items() if "password" not in key}
    return _account_page(request, posted.viewer, status=422, errors={section: reasons}, form=shown)


@router.post(f"{ACCOUNT}/name")
async def change_name(
    request: Request, posted: PostedForm, services: AccountServicesDep
) -> Response:
    """Change one's display name (blank: none)."""
    values = {"display_name": posted.text("display_name").strip() or None}
    refused = await _change(request, posted, services, section="name", values=values)
    return refused or posted.viewer.finish(redirect(f"{ACCOUNT}?done=name"))


@router.post(f"{ACCOUNT}/password")
async def change_password(
    request: Request, posted: PostedForm, services: AccountServicesDep
) -> Response:
    """Change one's password (the current one checked): the other sessions end."""
    values = {
        "password": posted.text("password"),
        "current_password": posted.text("current_password"),
    }
    refused = await _change(request, posted, services, section="password", values=values)
    return refused or posted.viewer.finish(redirect(f"{ACCOUNT}?done=password"))


@router.post(f"{ACCOUNT}/email")
async def change_email(
    request: Request, posted: PostedForm, services: AccountServicesDep
) -> Response:
    """Ask to change one's address: confirmed by a link mailed to the new one."""
    values = {"email": posted.text("email"), "current_password": posted.text("current_password")}
    refused = await _change(request, posted, services, section="email", values=values)
    return refused or page(
        request,
        posted.viewer,
        "message.html",
        heading="Check your new address",
        text=EMAIL_CHANGE_SENT,
    )


@router.post(f"{ACCOUNT}/sign-out-everywhere")
async def sign_out_everywhere(posted: PostedForm, database: DatabaseDep) -> Response:
    """End every session of the account, this one too, and void its mailed links."""
    principal = posted.viewer.require(next_path=ACCOUNT)
    async with unit_of_work(database, write=True) as connection:
        await sessions.sign_out_everywhere(connection, principal.id)
    posted.viewer.signed_out()
    return posted.viewer.finish(redirect("/sign-in?notice=everywhere"))
